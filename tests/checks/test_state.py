"""The state machine, table-driven, with injected time. No database."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.checks.schedule import deadlines_after, interval_error
from apps.checks.state import CheckSnapshot, Reason, Signal, Status, evaluate

T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
DAY, HOUR, MIN = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
SKEW = timedelta(seconds=5)


def snap(status, last_ping_at=T0, signal=Signal.SUCCESS, paused_at=None):
    return CheckSnapshot(
        status=Status(status),
        period=DAY,
        grace=HOUR,
        last_ping_at=last_ping_at,
        last_signal=signal if last_ping_at else None,
        paused_at=paused_at,
    )


CASES = [
    # (id, snapshot, now, expected status, changed, reason, changed_at, alert_after)
    (
        "new-without-ping-stays-new",
        snap("new", None),
        T0 + 400 * DAY,
        "new",
        False,
        None,
        None,
        None,
    ),
    (
        "new-first-success-goes-up",
        snap("new"),
        T0 + MIN,
        "up",
        True,
        Reason.FIRST_PING,
        T0,
        T0 + DAY + SKEW,
    ),
    ("up-before-deadline-stays-up", snap("up"), T0 + DAY, "up", False, None, None, T0 + DAY + SKEW),
    (
        "up-within-skew-allowance-stays-up",
        snap("up"),
        T0 + DAY + SKEW - timedelta(microseconds=1),
        "up",
        False,
        None,
        None,
        T0 + DAY + SKEW,
    ),
    (
        "up-after-deadline-goes-late",
        snap("up"),
        T0 + DAY + SKEW,
        "late",
        True,
        Reason.MISSED_DEADLINE,
        T0 + DAY + SKEW,
        T0 + DAY + SKEW + HOUR,
    ),
    (
        "late-within-grace-stays-late",
        snap("late"),
        T0 + DAY + 30 * MIN,
        "late",
        False,
        None,
        None,
        T0 + DAY + SKEW + HOUR,
    ),
    (
        "late-after-grace-goes-down",
        snap("late"),
        T0 + DAY + HOUR + SKEW,
        "down",
        True,
        Reason.MISSED_HEARTBEAT,
        T0 + DAY + HOUR + SKEW,
        None,
    ),
    (
        "up-long-overdue-goes-straight-down-backdated",
        snap("up"),
        T0 + 3 * DAY,
        "down",
        True,
        Reason.MISSED_HEARTBEAT,
        T0 + DAY + HOUR + SKEW,
        None,
    ),
    ("down-stays-down", snap("down"), T0 + 3 * DAY, "down", False, None, None, None),
    (
        "down-with-fresh-success-goes-up",
        snap("down", T0),
        T0 + MIN,
        "up",
        True,
        Reason.SUCCESS,
        T0,
        T0 + DAY + SKEW,
    ),
    (
        "late-with-fresh-success-goes-up",
        snap("late", T0),
        T0 + MIN,
        "up",
        True,
        Reason.SUCCESS,
        T0,
        T0 + DAY + SKEW,
    ),
    (
        "up-fail-goes-down",
        snap("up", T0, Signal.FAIL),
        T0 + MIN,
        "down",
        True,
        Reason.FAILURE_SIGNAL,
        T0,
        None,
    ),
    (
        "new-fail-goes-down",
        snap("new", T0, Signal.FAIL),
        T0,
        "down",
        True,
        Reason.FAILURE_SIGNAL,
        T0,
        None,
    ),
    (
        "late-fail-goes-down",
        snap("late", T0, Signal.FAIL),
        T0,
        "down",
        True,
        Reason.FAILURE_SIGNAL,
        T0,
        None,
    ),
    ("down-fail-stays-down", snap("down", T0, Signal.FAIL), T0, "down", False, None, None, None),
    (
        "paused-is-ignored",
        snap("paused", T0 - DAY, paused_at=T0),
        T0 + 30 * DAY,
        "paused",
        False,
        None,
        None,
        None,
    ),
    (
        "paused-without-ping-is-ignored",
        snap("paused", None, paused_at=T0),
        T0 + 30 * DAY,
        "paused",
        False,
        None,
        None,
        None,
    ),
    (
        "paused-resumed-by-later-success",
        snap("paused", T0 + MIN, paused_at=T0),
        T0 + 2 * MIN,
        "up",
        True,
        Reason.RESUMED,
        T0 + MIN,
        T0 + MIN + DAY + SKEW,
    ),
    (
        "paused-resumed-by-later-fail-goes-down",
        snap("paused", T0 + MIN, Signal.FAIL, paused_at=T0),
        T0 + 2 * MIN,
        "down",
        True,
        Reason.FAILURE_SIGNAL,
        T0 + MIN,
        None,
    ),
]


@pytest.mark.parametrize(
    ("snapshot", "now", "status", "changed", "reason", "changed_at", "alert_after"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_evaluate(snapshot, now, status, changed, reason, changed_at, alert_after):
    result = evaluate(snapshot, now, SKEW)
    assert result.status == status
    assert result.changed is changed
    assert result.reason == reason
    assert result.changed_at == changed_at
    assert result.alert_after == alert_after


def test_evaluation_is_stable_once_applied():
    """Applying a verdict and evaluating again at the same time changes nothing."""
    first = evaluate(snap("up"), T0 + DAY + SKEW, SKEW)
    again = evaluate(snap(first.status), T0 + DAY + SKEW, SKEW)
    assert not again.changed
    assert again.alert_after == first.alert_after


def test_incident_flags():
    down = evaluate(snap("late"), T0 + 2 * DAY, SKEW)
    assert down.opens_incident and not down.resolves_incident
    up = evaluate(snap("down"), T0 + MIN, SKEW)
    assert up.resolves_incident and not up.opens_incident
    assert not evaluate(snap("up"), T0 + MIN, SKEW).opens_incident


def test_deadlines_add_skew_before_late_and_down():
    d = deadlines_after(T0, DAY, HOUR, SKEW)
    assert d.expected_at == T0 + DAY
    assert d.late_at == T0 + DAY + SKEW
    assert d.down_at == T0 + DAY + SKEW + HOUR


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "Period is required."),
        (timedelta(seconds=59), "Period must be at least 1 minute."),
        (timedelta(minutes=1), None),
        (timedelta(days=365), None),
        (timedelta(days=365, seconds=1), "Period must be at most 365 days."),
        (timedelta(seconds=-5), "Period must be at least 1 minute."),
    ],
    ids=["missing", "too-short", "minimum", "maximum", "too-long", "negative"],
)
def test_interval_limits(value, message):
    assert interval_error(value, "Period") == message
