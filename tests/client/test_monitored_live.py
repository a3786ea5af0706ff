"""The `monitored` context manager and decorator, in this process, against the live server."""

import asyncio
import threading
import time

import pytest

from apps.checks.models import Check
from apps.client import monitored
from apps.incidents.models import Incident
from tests.factories import CheckFactory

from .conftest import pings_of, sweep_after_pings

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_check(team):
    return CheckFactory(team=team, name="report-export", slug="report-export")


@pytest.fixture
def url(live_app_url, live_check) -> str:
    return f"{live_app_url}/ping/{live_check.ping_token}"


class DiskFull(RuntimeError):
    pass


def test_block_that_finishes_reports_start_and_success(url, live_check):
    with monitored(url):
        exported = sum(range(10))

    assert exported == 45
    start, finish = pings_of(live_check)
    assert (start.kind, finish.kind) == ("start", "success")
    assert start.run_id == finish.run_id is not None
    assert bytes(finish.body).startswith(b"[tocsin] finished after ")


def test_exception_is_reported_with_its_traceback_and_propagates(url, live_check):
    with pytest.raises(DiskFull, match="no space left on /var/backups"), monitored(url):
        raise DiskFull("no space left on /var/backups")

    start, finish = pings_of(live_check)
    assert finish.kind == "fail"
    assert finish.run_id == start.run_id
    body = bytes(finish.body).decode()
    assert body.startswith("Traceback (most recent call last):")
    assert "DiskFull: no space left on /var/backups" in body
    assert "test_monitored_live.py" in body

    sweep_after_pings(live_check)
    live_check.refresh_from_db()
    assert live_check.status == Check.Status.DOWN
    incident = Incident.objects.get(owner=live_check)
    assert "DiskFull: no space left on /var/backups" in incident.details["body_tail"]


def test_decorator_reports_each_call_as_its_own_run(url, live_check):
    @monitored(url)
    def export(n):
        if n < 0:
            raise ValueError("negative")
        return n * 2

    assert export(21) == 42
    with pytest.raises(ValueError, match="negative"):
        export(-1)

    pings = pings_of(live_check)
    assert [p.kind for p in pings] == ["start", "success", "start", "fail"]
    assert pings[0].run_id == pings[1].run_id != pings[2].run_id == pings[3].run_id
    assert b"ValueError: negative" in bytes(pings[3].body)
    assert export.__name__ == "export"


def test_decorated_coroutine_is_monitored_while_it_is_awaited(url, live_check):
    @monitored(url)
    async def export():
        await asyncio.sleep(0.01)
        return "done"

    # On a thread of its own: browser tests earlier in the session leave an event loop running
    # on the main thread, where asyncio.run() refuses to start.
    results = []
    runner = threading.Thread(target=lambda: results.append(asyncio.run(export())))
    runner.start()
    runner.join(timeout=30)
    assert results == ["done"]

    assert [p.kind for p in pings_of(live_check)] == ["start", "success"]


@pytest.mark.parametrize(
    ("code", "kind", "exit_status"),
    [(0, "success", 0), (None, "success", 0), (4, "fail", 4), (300, "fail", None)],
    ids=["exit-0", "exit-none", "exit-4", "exit-out-of-range"],
)
def test_sys_exit_reports_the_exit_status(url, live_check, code, kind, exit_status):
    with pytest.raises(SystemExit), monitored(url):
        raise SystemExit(code)

    finish = pings_of(live_check)[-1]
    assert (finish.kind, finish.exit_status) == (kind, exit_status)


def test_unreachable_tocsin_never_raises_and_gives_up_in_bounded_time(blackhole_url):
    warnings = []
    started = time.monotonic()

    @monitored(blackhole_url, ping_timeout=0.5, warn=warnings.append)
    def job():
        return "result"

    assert job() == "result"
    # A blackhole never answers: returning at all is the budget at work (two pings of 0.5 s);
    # the bound leaves a busy machine room.
    assert time.monotonic() - started < 2 * 0.5 + 8
    assert len(warnings) == 2
    assert "could not send the /start ping" in warnings[0]


def test_unreachable_tocsin_keeps_the_jobs_own_exception(closed_port_url):
    warnings = []

    with (
        pytest.raises(KeyError),
        monitored(closed_port_url, ping_timeout=0.3, warn=warnings.append),
    ):
        raise KeyError("missing")

    assert "could not send the /fail ping" in warnings[-1]


def test_malformed_url_does_not_stop_the_job(db):
    warnings = []

    with monitored("not a url", warn=warnings.append):
        ran = True

    assert ran
    assert warnings == [
        "tocsin: not monitoring this run: ping URL must start with http:// or "
        "https://, got 'not a url'"
    ]


def test_nested_use_of_one_monitor_reports_two_runs(url, live_check):
    monitor = monitored(url)

    with monitor, monitor:
        pass

    pings = pings_of(live_check)
    assert [p.kind for p in pings] == ["start", "start", "success", "success"]
    assert len({p.run_id for p in pings}) == 2
