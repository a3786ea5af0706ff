import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.notifications.dispatch import Recipient, notify
from apps.notifications.models import Channel
from tests.browser.conftest import chromium, new_page, site  # noqa: F401 (browser fixtures)

from .receiver import Receiver, receiving

SECOND = timedelta(seconds=1)


@pytest.fixture
def allow_loopback(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True


@pytest.fixture
def receiver(allow_loopback) -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def make_channel(team, kind, name=None, **config) -> Channel:
    return Channel.objects.create(
        team=team, name=name or f"{kind}-{uuid.uuid4().hex[:6]}", kind=kind, config=config
    )


def fail_a_run(check, now, *, exit_status=3, body=b"", started_before=None) -> Incident:
    """A run that starts (optionally `started_before` now) and fails at `now`; swept."""
    run_id = uuid.uuid4()
    if started_before is not None:
        record_ping(
            ping=PingData(kind="start", method="POST", run_id=run_id),
            token=check.ping_token,
            now=now - started_before,
        )
    record_ping(
        ping=PingData(
            kind="fail", method="POST", exit_status=exit_status, run_id=run_id, body=body
        ),
        token=check.ping_token,
        now=now,
    )
    sweep_due_checks(now=now + SECOND)
    return Incident.objects.get(owner=check)


def tell(incident, *recipients, now, event="down", step=0, round=0) -> int:
    return notify(
        incident=incident, event=event, recipients=recipients, round=round, step=step, now=now
    )


def to_channel(channel) -> Recipient:
    return Recipient(channel_id=channel.id)


def beat_until(celery_worker, condition, *, what, timeout=30):
    """Stand in for beat: hand the flush and the retry scan to the worker every 0.2 s until
    `condition` holds."""
    from apps.notifications.tasks import flush_notification_groups_task, retry_due_deliveries_task

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flush_notification_groups_task.delay()
        retry_due_deliveries_task.delay()
        with celery_worker.exclusive():
            if condition():
                return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; the worker finished {celery_worker.finished}")
