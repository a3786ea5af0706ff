"""Calendar periods of the status reports, in the reader's zone (pure)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.teams.report_periods import (
    Frequency,
    current_period,
    last_complete_period,
    previous_period,
    recent_months,
)

RIGA = ZoneInfo("Europe/Riga")  # UTC+2, +3 in summer; clocks change at 01:00 UTC
NEW_YORK = ZoneInfo("America/New_York")


def test_monthly_period_after_the_autumn_change_is_an_hour_longer_in_riga():
    # 2026-10-25 at 04:00 local (01:00 UTC) Riga goes back from +3 to +2.
    now = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    october = last_complete_period(Frequency.MONTHLY, now, RIGA)
    assert october.first_day == date(2026, 10, 1)
    assert october.start == datetime(2026, 9, 30, 21, 0, tzinfo=UTC)  # 1 Oct 00:00 at +3
    assert october.end == datetime(2026, 10, 31, 22, 0, tzinfo=UTC)  # 1 Nov 00:00 at +2
    assert october.length == timedelta(days=31, hours=1)


def test_march_in_new_york_is_an_hour_short_and_the_report_waits_for_local_midnight():
    # 2026-03-08 New York springs forward (-5 to -4).
    march = last_complete_period(
        Frequency.MONTHLY, datetime(2026, 4, 1, 4, 0, tzinfo=UTC), NEW_YORK
    )
    assert march.start == datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    assert march.end == datetime(2026, 4, 1, 4, 0, tzinfo=UTC)
    assert march.length == timedelta(days=31) - timedelta(hours=1)
    # One second before local midnight on 31 March it is still March there: February is due.
    earlier = datetime(2026, 4, 1, 3, 59, 59, tzinfo=UTC)
    assert last_complete_period(Frequency.MONTHLY, earlier, NEW_YORK).first_day == date(2026, 2, 1)


def test_utc_month_boundary_differs_from_the_local_one():
    now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 1 January in Riga
    assert last_complete_period(Frequency.MONTHLY, now, RIGA).first_day == date(2026, 12, 1)
    assert last_complete_period(Frequency.MONTHLY, now, ZoneInfo("UTC")).first_day == date(
        2026, 11, 1
    )


@pytest.mark.parametrize(
    ("now", "first_day", "before"),
    [
        (datetime(2026, 12, 2, 10, tzinfo=UTC), date(2026, 11, 23), date(2026, 11, 16)),
        # Monday 30 November 00:30 in Riga is still Sunday in UTC.
        (datetime(2026, 11, 29, 22, 30, tzinfo=UTC), date(2026, 11, 23), date(2026, 11, 16)),
        (datetime(2026, 11, 29, 21, 30, tzinfo=UTC), date(2026, 11, 16), date(2026, 11, 9)),
    ],
    ids=["wednesday", "monday-just-after-local-midnight", "sunday-night"],
)
def test_weekly_periods_start_on_monday_local(now, first_day, before):
    week = last_complete_period(Frequency.WEEKLY, now, RIGA)
    assert week.first_day == first_day and week.first_day.weekday() == 0
    assert previous_period(Frequency.WEEKLY, week, RIGA).first_day == before
    assert week.end == current_period(Frequency.WEEKLY, now, RIGA).start


def test_daily_period_over_a_dst_change_is_25_hours():
    day = last_complete_period(Frequency.DAILY, datetime(2026, 10, 26, 12, tzinfo=UTC), RIGA)
    assert day.first_day == date(2026, 10, 25)
    assert day.length == timedelta(hours=25)


def test_previous_month_across_a_year_and_recent_months():
    january = current_period(Frequency.MONTHLY, datetime(2027, 1, 15, tzinfo=UTC), RIGA)
    assert previous_period(Frequency.MONTHLY, january, RIGA).first_day == date(2026, 12, 1)
    months = recent_months(datetime(2027, 1, 15, tzinfo=UTC), RIGA)
    assert [m.first_day for m in months] == [date(2027, 1, 1), date(2026, 12, 1), date(2026, 11, 1)]
    assert months[1].end == months[0].start and months[2].end == months[1].start


def test_off_has_no_periods():
    with pytest.raises(ValueError):
        current_period(Frequency.OFF, datetime(2026, 1, 1, tzinfo=UTC), RIGA)
