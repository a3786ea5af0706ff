"""Schedules, table-driven, with injected time. No database.

Expected instants are written in UTC and were checked by hand against the zone's rules (and
against cronsim, which follows Debian cron across daylight-saving changes).
"""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from apps.checks.schedule import (
    MAX_HOST_SHIFT,
    NEVER,
    Deadlines,
    HostClock,
    Schedule,
    ScheduleError,
    ScheduleKind,
    deadlines_after,
    host_clock,
    validate_schedule,
)

S, MIN, HOUR, DAY = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
)
NOW = datetime(2026, 3, 9, 12, 5, tzinfo=UTC)  # a Monday


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def cron(expression, timezone="UTC"):
    return Schedule(kind=ScheduleKind.CRON, expression=expression, timezone=timezone)


def oncalendar(expression, timezone="UTC"):
    return Schedule(kind=ScheduleKind.ONCALENDAR, expression=expression, timezone=timezone)


def period(value):
    return Schedule(kind=ScheduleKind.PERIOD, period=value)


# --- next_after ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        pytest.param(period(HOUR), NOW, NOW + HOUR, id="period-hour"),
        pytest.param(period(90 * S), NOW, NOW + 90 * S, id="period-90s"),
        pytest.param(period(DAY), utc(2026, 3, 7, 12), utc(2026, 3, 8, 12), id="period-day-utc"),
        pytest.param(cron("*/15 * * * *"), NOW, utc(2026, 3, 9, 12, 15), id="cron-every-15"),
        pytest.param(
            cron("0 12 * * *"), utc(2026, 3, 9, 12), utc(2026, 3, 10, 12), id="cron-strictly-after"
        ),
        pytest.param(
            cron("0 12 * * *"),
            utc(2026, 3, 9, 11, 59, 59),
            utc(2026, 3, 9, 12),
            id="cron-just-before",
        ),
        pytest.param(
            cron("0 9 * * 1-5"), utc(2026, 3, 13, 10), utc(2026, 3, 16, 9), id="cron-weekdays"
        ),
        pytest.param(cron("0  9 *   * *"), NOW, utc(2026, 3, 10, 9), id="cron-extra-whitespace"),
        pytest.param(cron("@hourly"), NOW, utc(2026, 3, 9, 13), id="hourly"),
        pytest.param(cron("@daily"), NOW, utc(2026, 3, 10), id="daily"),
        pytest.param(cron("@midnight"), NOW, utc(2026, 3, 10), id="midnight"),
        pytest.param(cron("@DAILY"), NOW, utc(2026, 3, 10), id="daily-any-case"),
        pytest.param(cron("@weekly"), NOW, utc(2026, 3, 15), id="weekly-is-sunday"),
        pytest.param(cron("@monthly"), NOW, utc(2026, 4, 1), id="monthly"),
        pytest.param(cron("@yearly"), NOW, utc(2027, 1, 1), id="yearly"),
        pytest.param(cron("@annually"), NOW, utc(2027, 1, 1), id="annually"),
        pytest.param(
            cron("@daily", "Europe/Riga"), NOW, utc(2026, 3, 9, 22), id="daily-riga-midnight"
        ),
        pytest.param(
            cron("@hourly", "Asia/Kolkata"),
            NOW,
            utc(2026, 3, 9, 12, 30),
            id="hourly-half-hour-zone",
        ),
        pytest.param(
            cron("0 0 29 2 *"), NOW, utc(2028, 2, 29), id="leap-day-skips-to-next-leap-year"
        ),
    ],
)
def test_next_after(schedule, after, expected):
    assert schedule.next_after(after) == expected
    assert schedule.next_after(after).tzinfo is not None


# --- daylight-saving changes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        # New York springs forward at 02:00 EST on 2026-03-08: 02:30 does not exist. The run
        # happens at 03:00 EDT (07:00 UTC), then 02:30 EDT (06:30 UTC) again the day after.
        pytest.param(
            cron("30 2 * * *", "America/New_York"),
            utc(2026, 3, 7, 12),
            [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)],
            id="new-york-spring-forward-skipped-0230",
        ),
        # New York falls back at 02:00 EDT on 2026-11-01: 01:30 happens at 05:30 and 06:30 UTC.
        # A daily 01:30 job is expected once (the first), then 01:30 EST the next day.
        pytest.param(
            cron("30 1 * * *", "America/New_York"),
            utc(2026, 10, 31, 12),
            [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)],
            id="new-york-fall-back-repeated-0130",
        ),
        # Berlin springs forward at 02:00 CET on 2026-03-29: 02:30 does not exist, run at 03:00
        # CEST (01:00 UTC).
        pytest.param(
            cron("30 2 * * *", "Europe/Berlin"),
            utc(2026, 3, 28, 12),
            [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)],
            id="berlin-spring-forward-skipped-0230",
        ),
        # Berlin falls back at 03:00 CEST on 2026-10-25: 02:30 happens at 00:30 and 01:30 UTC.
        pytest.param(
            cron("30 2 * * *", "Europe/Berlin"),
            utc(2026, 10, 24, 12),
            [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)],
            id="berlin-fall-back-repeated-0230",
        ),
        # An hourly job really runs every hour of elapsed time: both 01:00s on fall-back day,
        # and no 02:00 on spring-forward day.
        pytest.param(
            cron("0 * * * *", "America/New_York"),
            utc(2026, 11, 1, 4, 30),
            [utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)],
            id="new-york-hourly-fall-back",
        ),
        pytest.param(
            cron("0 * * * *", "America/New_York"),
            utc(2026, 3, 8, 5, 30),
            [utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)],
            id="new-york-hourly-spring-forward",
        ),
        # A daily midnight job keeps local midnight on both sides of the change.
        pytest.param(
            oncalendar("*-*-* 00:00:00", "America/New_York"),
            utc(2026, 3, 7, 12),
            [utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), utc(2026, 3, 10, 4)],
            id="oncalendar-midnight-new-york-spring",
        ),
        pytest.param(
            oncalendar("*-*-* 01:30", "America/New_York"),
            utc(2026, 10, 31, 12),
            [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)],
            id="oncalendar-new-york-fall-back-once",
        ),
    ],
)
def test_dst(schedule, after, expected):
    assert schedule.upcoming(after, len(expected)) == expected


def test_new_york_skipped_0230_runs_at_0300_local():
    run = cron("30 2 * * *", "America/New_York").next_after(utc(2026, 3, 7, 12))
    local = run.astimezone(ZoneInfo("America/New_York"))
    assert (local.date().isoformat(), local.hour, local.minute) == ("2026-03-08", 3, 0)
    assert local.utcoffset() == -4 * HOUR  # already EDT


@pytest.mark.parametrize(
    ("schedule", "first_pass", "second_pass", "next_day"),
    [
        pytest.param(
            cron("30 1 * * *", "America/New_York"),
            utc(2026, 11, 1, 5, 30),
            utc(2026, 11, 1, 6, 30),
            utc(2026, 11, 2, 6, 30),
            id="new-york",
        ),
        pytest.param(
            cron("30 2 * * *", "Europe/Berlin"),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 1, 30),
            utc(2026, 10, 26, 1, 30),
            id="berlin",
        ),
    ],
)
def test_repeated_local_time_is_expected_once(schedule, first_pass, second_pass, next_day):
    # After the first pass, and from anywhere in the repeated hour, the next run is the next day:
    # the second pass of the same wall-clock time is never expected.
    assert schedule.next_after(first_pass) == next_day
    assert schedule.next_after(second_pass - 30 * MIN) == next_day
    assert second_pass not in schedule.upcoming(first_pass - DAY, 5)


@pytest.mark.parametrize(
    ("schedule", "moment", "expected"),
    [
        # Inside the second pass of New York's repeated hour (01:00-02:00 EST) the first-pass
        # 01:30 EDT is already past: the next run is tomorrow, never a time before `moment`.
        pytest.param(
            cron("30 1 * * *", "America/New_York"),
            utc(2026, 11, 1, 6),
            utc(2026, 11, 2, 6, 30),
            id="cron-new-york-0100-est",
        ),
        pytest.param(
            cron("30 1 * * *", "America/New_York"),
            utc(2026, 11, 1, 6, 29, 59),
            utc(2026, 11, 2, 6, 30),
            id="cron-new-york-0129-est",
        ),
        pytest.param(
            cron("10,20 1 * * *", "America/New_York"),
            utc(2026, 11, 1, 6, 15),
            utc(2026, 11, 2, 6, 10),
            id="cron-new-york-two-fixed-minutes",
        ),
        pytest.param(
            cron("30 2 * * *", "Europe/Berlin"),
            utc(2026, 10, 25, 1),
            utc(2026, 10, 26, 1, 30),
            id="cron-berlin-0200-cet",
        ),
        pytest.param(
            oncalendar("*-*-* 01:30", "America/New_York"),
            utc(2026, 11, 1, 6),
            utc(2026, 11, 2, 6, 30),
            id="oncalendar-new-york-0100-est",
        ),
        pytest.param(
            oncalendar("*-*-* 02:30", "Europe/Berlin"),
            utc(2026, 10, 25, 1, 15),
            utc(2026, 10, 26, 1, 30),
            id="oncalendar-berlin-0215-cet",
        ),
        # A job whose minute is a wildcard really runs in both passes (as Debian cron does).
        pytest.param(
            cron("*/30 1 * * *", "America/New_York"),
            utc(2026, 11, 1, 6, 10),
            utc(2026, 11, 1, 6, 30),
            id="cron-new-york-wildcard-minute-runs-in-second-pass",
        ),
    ],
)
def test_next_after_inside_the_repeated_hour_is_never_in_the_past(schedule, moment, expected):
    assert schedule.next_after(moment) == expected


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param(cron("30 1 * * *", "America/New_York"), id="ny-0130"),
        pytest.param(cron("30 2 * * *", "America/New_York"), id="ny-0230"),
        pytest.param(cron("0 * * * *", "America/New_York"), id="ny-hourly"),
        pytest.param(cron("*/20 1-2 * * *", "America/New_York"), id="ny-every-20-at-1-2"),
        pytest.param(cron("30 2 * * *", "Europe/Berlin"), id="berlin-0230"),
        pytest.param(oncalendar("*-*-* 01:30", "America/New_York"), id="oncal-ny-0130"),
        pytest.param(oncalendar("*-*-* 02:30", "Europe/Berlin"), id="oncal-berlin-0230"),
    ],
)
@pytest.mark.parametrize(
    "day",
    [
        pytest.param(utc(2026, 3, 8), id="us-spring"),
        pytest.param(utc(2026, 11, 1), id="us-fall"),
        pytest.param(utc(2026, 3, 29), id="eu-spring"),
        pytest.param(utc(2026, 10, 25), id="eu-fall"),
    ],
)
def test_next_after_is_strictly_later_and_monotonic_across_dst_days(schedule, day):
    previous = None
    for step in range(0, 24 * 60, 5):
        moment = day + step * MIN
        upcoming = schedule.next_after(moment)
        assert upcoming > moment
        if previous is not None:
            assert upcoming >= previous
        previous = upcoming


# --- OnCalendar --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        pytest.param(
            oncalendar("Mon..Fri 09:00", "Europe/Riga"),
            utc(2026, 3, 27, 12),  # Friday afternoon; Riga springs forward on Sunday 29th
            [utc(2026, 3, d, 6) for d in (30, 31)] + [utc(2026, 4, d, 6) for d in (1, 2, 3)],
            id="weekdays-riga-across-dst",
        ),
        pytest.param(
            oncalendar("Mon..Fri 09:00"),
            utc(2026, 3, 13, 9),  # Friday 09:00 exactly: strictly after
            [utc(2026, 3, 16, 9), utc(2026, 3, 17, 9)],
            id="weekdays-utc-skip-weekend",
        ),
        pytest.param(
            oncalendar("*-*-* 00:00:00"),
            NOW,
            [utc(2026, 3, 10), utc(2026, 3, 11)],
            id="daily-utc",
        ),
        pytest.param(
            oncalendar("*-*-* 00:00:00", "Asia/Tokyo"),
            NOW,
            [utc(2026, 3, 9, 15), utc(2026, 3, 10, 15)],
            id="daily-tokyo",
        ),
        pytest.param(
            oncalendar("*-*-* *:00/15"), NOW, [utc(2026, 3, 9, 12, 15)], id="every-15-min"
        ),
        pytest.param(oncalendar("daily"), NOW, [utc(2026, 3, 10)], id="shorthand-daily"),
        pytest.param(oncalendar("2026-03-08 00:00"), NOW, [], id="one-shot-in-the-past"),
    ],
)
def test_oncalendar(schedule, after, expected):
    assert schedule.upcoming(after, len(expected) or 5) == expected


def test_oncalendar_without_future_occurrence_is_never():
    assert oncalendar("2026-03-08 00:00").next_after(NOW) == NEVER


# --- upcoming ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param(period(HOUR), id="period"),
        pytest.param(cron("*/10 * * * *"), id="cron"),
        pytest.param(cron("30 2 * * *", "America/New_York"), id="cron-dst"),
        pytest.param(cron("@weekly", "Europe/Berlin"), id="cron-weekly-berlin"),
        pytest.param(oncalendar("Mon..Fri 09:00", "Europe/Riga"), id="oncalendar"),
    ],
)
@pytest.mark.parametrize(
    "after",
    [
        pytest.param(NOW, id="now"),
        pytest.param(utc(2026, 3, 7, 12), id="before-us-spring-forward"),
        pytest.param(utc(2026, 10, 31, 12), id="before-us-fall-back"),
    ],
)
def test_upcoming_gives_five_increasing_times(schedule, after):
    times = schedule.upcoming(after)
    assert len(times) == 5
    assert times == sorted(set(times))
    assert times[0] == schedule.next_after(after) > after
    for earlier, later in pairwise(times):
        assert schedule.next_after(earlier) == later
    assert all(t.utcoffset() == timedelta(0) for t in times)


def test_upcoming_period_preview():
    assert period(HOUR).upcoming(NOW) == [NOW + k * HOUR for k in range(1, 6)]


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        pytest.param(cron(""), "Enter an expression", id="empty"),
        pytest.param(cron("   "), "Enter an expression", id="blank"),
        pytest.param(oncalendar(""), "Enter an expression", id="empty-oncalendar"),
        pytest.param(cron("0 0 * * * *"), "A cron expression has 5 fields", id="six-fields"),
        pytest.param(cron("0 0 * *"), "A cron expression has 5 fields", id="four-fields"),
        pytest.param(cron("61 * * * *"), "Invalid cron expression: Bad minute", id="minute-61"),
        pytest.param(cron("0 24 * * *"), "Invalid cron expression: Bad hour", id="hour-24"),
        pytest.param(cron("0 0 30 2 *"), "Invalid cron expression", id="february-30"),
        pytest.param(cron("0 0 * 13 *"), "Invalid cron expression", id="month-13"),
        pytest.param(cron("a b c d e"), "Invalid cron expression", id="garbage"),
        pytest.param(cron("@reboot"), "Unknown cron shortcut", id="shortcut-reboot"),
        pytest.param(cron("@every 5m"), "Unknown cron shortcut", id="shortcut-every"),
        pytest.param(cron("@fortnightly"), "Unknown cron shortcut", id="shortcut-unknown"),
        pytest.param(
            cron("* * * * *", "Mars/Olympus"),
            "Unknown timezone “Mars/Olympus”: use an IANA name",
            id="timezone-mars",
        ),
        pytest.param(cron("* * * * *", ""), "Unknown timezone", id="timezone-empty"),
        pytest.param(cron("* * * * *", "../../etc/passwd"), "Unknown timezone", id="timezone-path"),
        pytest.param(
            oncalendar("daily", "Mars/Olympus"), "Unknown timezone", id="oncalendar-timezone"
        ),
        pytest.param(cron("0 " * 101), "at most 200 characters", id="cron-too-long"),
        pytest.param(oncalendar("*" * 201), "at most 200 characters", id="oncalendar-too-long"),
        pytest.param(
            oncalendar("Mon..Fry 09:00"), "Invalid OnCalendar expression", id="oncalendar-weekday"
        ),
        pytest.param(
            oncalendar("*-*-* 25:00"), "Invalid OnCalendar expression: Bad hour", id="oncal-hour"
        ),
        pytest.param(oncalendar("bogus"), "Invalid OnCalendar expression", id="oncal-garbage"),
        pytest.param(
            oncalendar("2020-01-01 00:00"), "never matches a time in the future", id="oncal-past"
        ),
        pytest.param(period(59 * S), "Period must be at least 1 minute", id="period-59s"),
        pytest.param(period(timedelta(0)), "Period must be at least 1 minute", id="period-zero"),
        pytest.param(period(-HOUR), "Period must be at least 1 minute", id="period-negative"),
        pytest.param(
            period(365 * DAY + S), "Period must be at most 365 days", id="period-over-a-year"
        ),
        pytest.param(Schedule(period=None), "Period is required", id="period-missing"),
    ],
)
def test_validate_schedule_rejects(schedule, message):
    with pytest.raises(ScheduleError, match=message):
        validate_schedule(schedule, now=NOW)


@pytest.mark.parametrize(
    "schedule",
    [
        pytest.param(period(MIN), id="period-1-minute"),
        pytest.param(period(365 * DAY), id="period-365-days"),
        pytest.param(cron("* * * * *"), id="cron-every-minute"),
        pytest.param(cron("30 2 * * *", "America/New_York"), id="cron-new-york"),
        pytest.param(cron(" @daily "), id="shortcut-padded"),
        pytest.param(cron("@Monthly", "Europe/Berlin"), id="shortcut-mixed-case"),
        pytest.param(cron("0 " + "9 " + "* " * 3), id="exactly-five-fields"),
        pytest.param(cron("0 0 * * " + ",".join(["1"] * 90)), id="long-but-below-limit"),
        pytest.param(oncalendar("Mon..Fri 09:00", "Europe/Riga"), id="oncalendar-weekdays"),
        pytest.param(oncalendar("*-*-* 00:00:00", "America/New_York"), id="oncalendar-midnight"),
        pytest.param(oncalendar("2026-12-31 23:00"), id="oncalendar-one-shot-in-future"),
    ],
)
def test_validate_schedule_accepts(schedule):
    assert validate_schedule(schedule, now=NOW) is schedule


# --- deadlines ---------------------------------------------------------------------------------

DAILY_0300 = cron("0 3 * * *")
SKEW = 5 * S
GRACE = 10 * MIN


def d(expected_at, late_at, down_at):
    return Deadlines(expected_at=expected_at, late_at=late_at, down_at=down_at)


@pytest.mark.parametrize(
    ("last_checkin", "schedule", "kwargs", "expected"),
    [
        pytest.param(
            NOW,
            period(HOUR),
            {},
            d(NOW + HOUR, NOW + HOUR + SKEW, NOW + HOUR + SKEW + GRACE),
            id="period-skew-before-late-and-down",
        ),
        pytest.param(
            utc(2026, 3, 9, 3),
            DAILY_0300,
            {},
            d(utc(2026, 3, 10, 3), utc(2026, 3, 10, 3) + SKEW, utc(2026, 3, 10, 3) + SKEW + GRACE),
            id="cron-on-time",
        ),
        pytest.param(
            utc(2026, 3, 9, 3) - 2 * S,
            DAILY_0300,
            {},
            d(utc(2026, 3, 10, 3), utc(2026, 3, 10, 3) + SKEW, utc(2026, 3, 10, 3) + SKEW + GRACE),
            id="cron-2s-early-counts-for-todays-run",
        ),
        pytest.param(
            utc(2026, 3, 9, 3) - SKEW,
            DAILY_0300,
            {},
            d(utc(2026, 3, 10, 3), utc(2026, 3, 10, 3) + SKEW, utc(2026, 3, 10, 3) + SKEW + GRACE),
            id="cron-early-by-exactly-the-allowance",
        ),
        pytest.param(
            utc(2026, 3, 9, 3) - SKEW - S,
            DAILY_0300,
            {},
            d(utc(2026, 3, 9, 3), utc(2026, 3, 9, 3) + SKEW, utc(2026, 3, 9, 3) + SKEW + GRACE),
            id="cron-earlier-than-allowance-still-expects-todays-run",
        ),
        pytest.param(
            utc(2026, 3, 9, 3) + 3 * S,
            DAILY_0300,
            {},
            d(utc(2026, 3, 10, 3), utc(2026, 3, 10, 3) + SKEW, utc(2026, 3, 10, 3) + SKEW + GRACE),
            id="cron-slightly-late",
        ),
        pytest.param(
            NOW,
            period(HOUR),
            {"missed_tolerance": 3},
            d(NOW + HOUR, NOW + HOUR + SKEW, NOW + 3 * HOUR + SKEW + GRACE),
            id="period-tolerate-3-misses",
        ),
        pytest.param(
            utc(2026, 3, 9, 3),
            DAILY_0300,
            {"missed_tolerance": 3},
            d(utc(2026, 3, 10, 3), utc(2026, 3, 10, 3) + SKEW, utc(2026, 3, 12, 3) + SKEW + GRACE),
            id="cron-tolerate-3-misses",
        ),
        pytest.param(
            utc(2026, 3, 13, 9),  # Friday
            cron("0 9 * * 1-5"),
            {"missed_tolerance": 2},
            d(utc(2026, 3, 16, 9), utc(2026, 3, 16, 9) + SKEW, utc(2026, 3, 17, 9) + SKEW + GRACE),
            id="cron-tolerance-follows-the-schedule-not-a-period",
        ),
        pytest.param(
            NOW,
            period(HOUR),
            {"missed_tolerance": 0},
            d(NOW + HOUR, NOW + HOUR + SKEW, NOW + HOUR + SKEW + GRACE),
            id="tolerance-zero-means-one",
        ),
        pytest.param(
            NOW,
            period(HOUR),
            {"host_shift": -40 * S},
            d(NOW + HOUR, NOW + HOUR + SKEW, NOW + HOUR + SKEW + GRACE),
            id="period-ignores-a-fast-host",
        ),
        pytest.param(
            NOW,
            period(HOUR),
            {"host_shift": 40 * S},
            d(NOW + HOUR, NOW + HOUR + SKEW, NOW + HOUR + SKEW + GRACE),
            id="period-ignores-a-slow-host",
        ),
        pytest.param(
            # A job host 40 s fast pings by its own cron 40 s before the server's 03:00: that
            # ping is meant for today's run, and tomorrow's comes 40 s early too.
            utc(2026, 3, 9, 3) - 40 * S,
            DAILY_0300,
            {"host_shift": -40 * S},
            d(
                utc(2026, 3, 10, 3) - 40 * S,
                utc(2026, 3, 10, 3) - 40 * S + SKEW,
                utc(2026, 3, 10, 3) - 40 * S + SKEW + GRACE,
            ),
            id="cron-fast-host-runs-early",
        ),
        pytest.param(
            # A host 40 s slow runs 03:00 at 03:00:40 by the server's clock.
            utc(2026, 3, 9, 3) + 40 * S,
            DAILY_0300,
            {"host_shift": 40 * S},
            d(
                utc(2026, 3, 10, 3) + 40 * S,
                utc(2026, 3, 10, 3) + 40 * S + SKEW,
                utc(2026, 3, 10, 3) + 40 * S + SKEW + GRACE,
            ),
            id="cron-slow-host-runs-late",
        ),
        pytest.param(
            utc(2026, 3, 9, 3) + 40 * S,
            DAILY_0300,
            {"host_shift": 40 * S, "missed_tolerance": 2},
            d(
                utc(2026, 3, 10, 3) + 40 * S,
                utc(2026, 3, 10, 3) + 40 * S + SKEW,
                utc(2026, 3, 11, 3) + 40 * S + SKEW + GRACE,
            ),
            id="cron-shift-applies-to-every-tolerated-run",
        ),
        pytest.param(
            utc(2026, 3, 7, 12),
            cron("30 2 * * *", "America/New_York"),
            {},
            d(utc(2026, 3, 8, 7), utc(2026, 3, 8, 7) + SKEW, utc(2026, 3, 8, 7) + SKEW + GRACE),
            id="cron-dst-skipped-time",
        ),
        pytest.param(
            # The 01:30 EDT run took 30 minutes and pinged at 01:00 EST (fall-back day): the
            # next expected run is tomorrow, not the 01:30 EDT that has already passed.
            utc(2026, 11, 1, 6),
            cron("30 1 * * *", "America/New_York"),
            {},
            d(
                utc(2026, 11, 2, 6, 30),
                utc(2026, 11, 2, 6, 30) + SKEW,
                utc(2026, 11, 2, 6, 30) + SKEW + GRACE,
            ),
            id="cron-dst-ping-in-repeated-hour",
        ),
        pytest.param(
            utc(2026, 3, 1),
            oncalendar("2026-03-08 00:00"),
            {"missed_tolerance": 3},
            d(utc(2026, 3, 8), utc(2026, 3, 8) + SKEW, utc(2026, 3, 8) + SKEW + GRACE),
            id="one-shot-fewer-occurrences-than-tolerance",
        ),
        pytest.param(
            NOW,
            oncalendar("2026-03-08 00:00"),
            {"missed_tolerance": 2, "host_shift": HOUR},
            d(NEVER, NEVER, NEVER),
            id="one-shot-already-past-nothing-expected",
        ),
    ],
)
def test_deadlines_after(last_checkin, schedule, kwargs, expected):
    assert deadlines_after(last_checkin, schedule, GRACE, SKEW, **kwargs) == expected


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ([], HostClock()),
        ([90 * S], HostClock(offset=90 * S, shift=90 * S)),
        ([-90 * S, -91 * S, -89 * S], HostClock(offset=-90 * S, shift=-90 * S)),
        # One odd ping among steady ones moves nothing.
        ([90 * S, 90 * S, HOUR, 90 * S, 90 * S], HostClock(offset=90 * S, shift=90 * S)),
        # Only the last five count: a clock that was fixed is followed once most pings agree.
        ([HOUR] * 5 + [0 * S] * 3, HostClock()),
        # A clock an hour off is capped, either way, and says so.
        ([HOUR] * 3, HostClock(offset=HOUR, shift=MAX_HOST_SHIFT)),
        ([-HOUR] * 3, HostClock(offset=-HOUR, shift=-MAX_HOST_SHIFT)),
    ],
    ids=["none", "one", "median", "outlier", "last-five", "capped-slow", "capped-fast"],
)
def test_host_clock_is_smoothed_and_capped(offsets, expected):
    got = host_clock(offsets)
    assert got == expected
    assert got.is_capped == (abs(got.offset) > MAX_HOST_SHIFT)


def test_cron_ping_just_before_run_expects_next_days_run():
    # The job pinged 2 s before the server's 03:00 for today's run: tomorrow 03:00 is expected,
    # and the check is not late at today's 03:00 + allowance.
    deadlines = deadlines_after(utc(2026, 3, 9, 2, 59, 58), DAILY_0300, GRACE, SKEW)
    assert deadlines.expected_at == utc(2026, 3, 10, 3)
    assert deadlines.late_at > utc(2026, 3, 9, 3) + SKEW


@pytest.mark.parametrize(
    ("missed_tolerance", "down_after_run"),
    [
        pytest.param(1, 1, id="M1-down-after-1st"),
        pytest.param(2, 2, id="M2-down-after-2nd"),
        pytest.param(3, 3, id="M3-down-after-3rd"),
    ],
)
def test_missed_tolerance_counts_expected_times(missed_tolerance, down_after_run):
    schedule = cron("*/5 * * * *")
    last = utc(2026, 3, 9, 12)
    deadlines = deadlines_after(last, schedule, GRACE, SKEW, missed_tolerance=missed_tolerance)
    expected_times = schedule.upcoming(last, 5)
    assert deadlines.down_at == expected_times[down_after_run - 1] + SKEW + GRACE
    assert deadlines.down_at < expected_times[down_after_run] + SKEW + GRACE
    assert deadlines.late_at == expected_times[0] + SKEW
