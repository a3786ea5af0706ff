"""Schedules, classification and blind-window detection: pure rules, injected time, no DB."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.checks.monitor import SweepSample, detect_blind_window
from apps.checks.rules import Outcome, PingEvent, PingKind, Rules, classify
from apps.checks.schedule import (
    Schedule,
    ScheduleError,
    ScheduleKind,
    deadlines_after,
    validate_schedule,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=5)


def cron(expression, tz="UTC"):
    return Schedule(kind=ScheduleKind.CRON, expression=expression, timezone=tz)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        (Schedule(period=timedelta(hours=2)), NOW, NOW + timedelta(hours=2)),
        (cron("@hourly"), NOW, datetime(2026, 11, 2, 13, 0, tzinfo=UTC)),
        (cron("@daily"), NOW, datetime(2026, 11, 3, 0, 0, tzinfo=UTC)),
        (cron("@weekly"), NOW, datetime(2026, 11, 8, 0, 0, tzinfo=UTC)),  # next Sunday
        (cron("@monthly"), NOW, datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
        (cron("@yearly"), NOW, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        (cron("*/15 * * * *"), NOW, datetime(2026, 11, 2, 12, 15, tzinfo=UTC)),
        # 2026-03-08: New York skips 02:00-03:00; the 02:30 job runs at 03:00 EDT (07:00 UTC).
        (
            cron("30 2 * * *", "America/New_York"),
            datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
            datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        ),
        # 2026-11-01: 01:30 happens twice in New York; the job is expected once, the first time.
        (
            cron("30 1 * * *", "America/New_York"),
            datetime(2026, 10, 31, 12, 0, tzinfo=UTC),
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        ),
        (
            cron("30 1 * * *", "America/New_York"),
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
        ),
        (
            Schedule(kind=ScheduleKind.ONCALENDAR, expression="Mon..Fri 09:00", timezone="UTC"),
            datetime(2026, 11, 6, 10, 0, tzinfo=UTC),  # a Friday after 09:00
            datetime(2026, 11, 9, 9, 0, tzinfo=UTC),
        ),
    ],
    ids=[
        "period",
        "hourly",
        "daily",
        "weekly",
        "monthly",
        "yearly",
        "every-15",
        "dst-skipped-0230",
        "dst-repeated-0130-first",
        "dst-repeated-0130-once",
        "oncalendar",
    ],
)
def test_next_after(schedule, after, expected):
    assert schedule.next_after(after) == expected


def test_upcoming_gives_five_times_in_order():
    times = cron("0 9 * * 1-5", "Europe/Riga").upcoming(NOW, 5)
    assert len(times) == 5 and times == sorted(times)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (cron(""), "Enter an expression"),
        (cron("0 0 * * * *"), "5 fields"),
        (cron("0 0 * *"), "5 fields"),
        (cron("61 * * * *"), "Invalid cron expression"),
        (cron("@fortnightly"), "Unknown cron shortcut"),
        (cron("0 3 * * *", "Mars/Olympus"), "Unknown timezone"),
        (cron("0 " * 150), "at most 200 characters"),
        (Schedule(kind=ScheduleKind.ONCALENDAR, expression="Someday 25:00"), "Invalid OnCalendar"),
        (Schedule(period=timedelta(seconds=30)), "at least 1 minute"),
        (Schedule(period=timedelta(days=366)), "at most 365 days"),
    ],
)
def test_invalid_schedules_give_clear_errors(schedule, message):
    with pytest.raises(ScheduleError, match=message):
        validate_schedule(schedule, now=NOW)


def test_an_early_cron_ping_counts_for_the_run_it_was_meant_for():
    schedule = cron("0 3 * * *")
    early = datetime(2026, 11, 2, 2, 59, 58, tzinfo=UTC)  # the job host's clock is 2 s fast
    deadlines = deadlines_after(early, schedule, timedelta(hours=1), SKEW)
    assert deadlines.expected_at == datetime(2026, 11, 3, 3, 0, tzinfo=UTC)


def test_missed_tolerance_and_observed_offset():
    d = deadlines_after(
        NOW,
        Schedule(period=timedelta(hours=1)),
        timedelta(minutes=10),
        SKEW,
        missed_tolerance=3,
        observed_offset=timedelta(seconds=-30),
    )
    allowance = SKEW + timedelta(seconds=30)
    assert d.late_at == NOW + timedelta(hours=1) + allowance
    assert d.down_at == NOW + timedelta(hours=3) + allowance + timedelta(minutes=10)


def ping(kind="success", **facts):
    return PingEvent(n=1, kind=PingKind(kind), received_at=NOW, **facts)


@pytest.mark.parametrize(
    ("event", "rules", "outcome"),
    [
        (ping(method="GET"), Rules(post_only=True), Outcome.IGNORED),
        (ping(method="POST"), Rules(post_only=True), Outcome.SUCCESS),
        (ping(body="Backup FAILED"), Rules(failure_keywords=("failed",)), Outcome.FAIL),
        (
            ping(body="ok and failed"),
            Rules(success_keywords=("ok",), failure_keywords=("failed",)),
            Outcome.FAIL,
        ),
        (ping(body="nothing"), Rules(success_keywords=("all good",)), Outcome.IGNORED),
        (ping("log", body="ERROR: x"), Rules(failure_keywords=("error",)), Outcome.FAIL),
        (ping("fail", attempt=1, max_attempts=3), Rules(), Outcome.RETRYING),
        (ping("fail", attempt=3, max_attempts=3), Rules(), Outcome.FAIL),
        (ping("fail", exit_status=75), Rules(), Outcome.TRANSIENT),
        (ping("fail", exit_status=1), Rules(), Outcome.FAIL),
        (ping(processed=1000, failed=1), Rules(partial_max_ratio=0.001), Outcome.PARTIAL),
        (
            ping(processed=1000, failed=2),
            Rules(partial_max_ratio=0.001),
            Outcome.PARTIAL_OVER_LIMIT,
        ),
        (
            ping(body='{"processed": 10, "failed": 11}'),
            Rules(partial_max_failed=10),
            Outcome.PARTIAL_OVER_LIMIT,
        ),
        (
            ping(body='{"processed": 10, "failed": true}'),
            Rules(partial_max_failed=0),
            Outcome.SUCCESS,
        ),
        (ping(body="{not json"), Rules(partial_max_failed=0), Outcome.SUCCESS),
        (ping(body="[1, 2]"), Rules(partial_max_failed=0), Outcome.SUCCESS),
        (ping("start"), Rules(), Outcome.START),
        (ping("progress"), Rules(), Outcome.PROGRESS),
        (ping("log"), Rules(), Outcome.LOG),
    ],
)
def test_classify(event, rules, outcome):
    assert classify(event, rules) == outcome


def sweeps(start, count, every, pings):
    return [SweepSample(start - i * every, pings) for i in range(count)]


def test_blind_window_detection():
    interval, allowance = timedelta(seconds=5), SKEW
    assert detect_blind_window([], now=NOW, sweep_interval=interval, allowance=allowance) is None
    normal = sweeps(NOW - interval, 400, interval, 5)
    assert (
        detect_blind_window(normal, now=NOW, sweep_interval=interval, allowance=allowance) is None
    )
    gap = [SweepSample(NOW - timedelta(minutes=10), 5)]
    window = detect_blind_window(gap, now=NOW, sweep_interval=interval, allowance=allowance)
    assert (window.since, window.cause) == (NOW - timedelta(minutes=10), "sweeper")
    # 60 pings a minute for half an hour, then nothing for the last two minutes.
    dropped = sweeps(NOW - interval, 24, interval, 0) + sweeps(
        NOW - timedelta(minutes=2) - interval, 400, interval, 5
    )
    window = detect_blind_window(dropped, now=NOW, sweep_interval=interval, allowance=allowance)
    assert (window.since, window.cause) == (NOW - timedelta(minutes=2), "ingest")
    quiet = sweeps(NOW - interval, 24, interval, 0) + sweeps(
        NOW - timedelta(minutes=2) - interval, 400, interval, 0
    )
    assert detect_blind_window(quiet, now=NOW, sweep_interval=interval, allowance=allowance) is None
