"""A web node whose clock runs 30 s ahead or behind causes no false alert and no missed one.

On PostgreSQL the database clock decides: the ping statement stamps `now()` and the sweeper
reads `now()` once per run (apps/clock.py). Here Python's clock is shifted with
time-machine while the ping goes through the real WSGI fast path over HTTP (the server thread
is in this process, so it sees the shifted clock too), then the sweeps are judged on the
database's time line. Had the node's clock stamped the ping, a node 30 s behind would make the
1-minute check late 30 s early (a false alert) and a node 30 s ahead would delay its alert by
30 s.
"""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.checks.models import Check, Flip
from apps.checks.sweeper import sweep_due_checks
from apps.checks.tasks import sweep_due_checks_task
from apps.clock import database_now
from apps.incidents.models import Incident
from tests.checks.test_ping_endpoint import only_ping, ping_path
from tests.factories import CheckFactory
from tests.live import fetch

pytestmark = [
    pytest.mark.skipif(
        "connection.vendor != 'postgresql'",
        reason=(
            "SQLite has no clock apart from its host's: in the embedded mode web, worker and "
            "beat run on one machine and Tocsin reads that machine's clock (apps/checks/"
            "clock.py), so no node clock can drift from the database's (shifting Python's "
            "clock shifts the only clock there is)."
        ),
    ),
    pytest.mark.django_db(transaction=True),
]

PERIOD = GRACE = timedelta(minutes=1)
SKEWS = [
    pytest.param(timedelta(seconds=30), id="web-clock-30s-ahead"),
    pytest.param(timedelta(seconds=-30), id="web-clock-30s-behind"),
]
TICK = timedelta(microseconds=1)


@pytest.fixture
def minutely(team):
    # No team members, so going down queues no notification (nothing reaches the broker).
    return CheckFactory(team=team, period=PERIOD, grace=GRACE)


def ping_from_skewed_node(base_url: str, check: Check, skew: timedelta) -> datetime:
    """Ping through the real endpoint while this process's clock is off by `skew`; return what
    the node believed the time was."""
    with time_machine.travel(datetime.now(UTC) + skew, tick=True):
        node_now = timezone.now()
        reply = fetch(base_url, "GET", ping_path(check))
    assert reply.status == 200
    return node_now


def status_after_sweep(check: Check, now: datetime) -> str:
    sweep_due_checks(now=now)
    check.refresh_from_db()
    return check.status


@pytest.mark.parametrize("skew", SKEWS)
def test_ping_is_stamped_by_the_database_clock(live_app_url, minutely, skew):
    before = database_now()
    node_now = ping_from_skewed_node(live_app_url, minutely, skew)
    after = database_now()

    received_at = only_ping(minutely).received_at
    assert before <= received_at <= after
    assert abs(received_at - node_now) > timedelta(seconds=25)


def test_pings_from_nodes_skewed_both_ways_keep_database_order(live_app_url, minutely):
    ping_from_skewed_node(live_app_url, minutely, timedelta(seconds=30))
    ping_from_skewed_node(live_app_url, minutely, timedelta(seconds=-30))
    first, second = sorted(minutely.pings.all(), key=lambda p: p.n)
    # Node clocks would put the second ping a minute before the first.
    assert timedelta(0) <= second.received_at - first.received_at < timedelta(seconds=5)


@pytest.mark.parametrize("skew", SKEWS)
def test_check_pinged_on_time_stays_up(live_app_url, minutely, skew):
    ping_from_skewed_node(live_app_url, minutely, skew)
    pinged_at = only_ping(minutely).received_at
    # A sweeper right after the ping, itself on a node whose clock is skewed too: the real
    # task reads the database clock.
    with time_machine.travel(datetime.now(UTC) + 5 * skew, tick=True):
        sweep_due_checks_task()
    minutely.refresh_from_db()
    assert minutely.status == Check.Status.UP

    # Up to the moment the next ping is due, and within the allowance after it, nothing fires.
    late_at = pinged_at + PERIOD + settings.CLOCK_SKEW_ALLOWANCE
    for now in (pinged_at + PERIOD / 2, pinged_at + PERIOD, late_at - TICK):
        assert status_after_sweep(minutely, now) == Check.Status.UP

    # The next ping comes on time (by the database clock), from a node skewed the other way:
    # the check stays up past the first deadline.
    ping_from_skewed_node(live_app_url, minutely, -skew)
    assert status_after_sweep(minutely, late_at + TICK) == Check.Status.UP
    assert list(Flip.objects.values_list("to_status", flat=True)) == ["up"]
    assert not Incident.objects.exists()


@pytest.mark.parametrize("skew", SKEWS)
def test_silent_check_goes_down_at_its_database_deadline(live_app_url, minutely, skew):
    ping_from_skewed_node(live_app_url, minutely, skew)
    pinged_at = only_ping(minutely).received_at
    late_at = pinged_at + PERIOD + settings.CLOCK_SKEW_ALLOWANCE
    down_at = late_at + GRACE

    assert status_after_sweep(minutely, late_at - TICK) == Check.Status.UP
    assert status_after_sweep(minutely, late_at) == Check.Status.LATE
    assert status_after_sweep(minutely, down_at - TICK) == Check.Status.LATE
    assert not Incident.objects.exists()
    assert status_after_sweep(minutely, down_at) == Check.Status.DOWN

    incident = Incident.objects.get()
    assert incident.kind == Incident.Kind.MISSED_HEARTBEAT
    assert incident.opened_at == down_at
    assert incident.details["expected_at"] == (pinged_at + PERIOD).isoformat()
    flips = Flip.objects.order_by("happened_at")
    assert [(f.to_status, f.happened_at) for f in flips] == [
        ("up", pinged_at),
        ("late", late_at),
        ("down", down_at),
    ]


assert connection  # for the skipif condition string, evaluated in this module
