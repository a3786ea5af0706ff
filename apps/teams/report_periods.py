"""The calendar periods of status reports: a day, a week (from Monday) or a month, each from
local midnight in the reader's zone to the next. Pure: stdlib only; the caller passes `now`.

Bounds are computed as local wall times and converted to UTC, so a month that crosses a
daylight-saving change is 1 hour shorter or longer than its days times 24 hours, exactly as the
reader's calendar says. A local midnight that does not exist (a few zones change clocks at
midnight) is read with fold=0, i.e. with the offset in force before the change.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Frequency(StrEnum):
    OFF = "off"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


# As Healthchecks does: a monthly report unless the person chose otherwise.
DEFAULT_FREQUENCY = Frequency.MONTHLY


@dataclass(frozen=True)
class Period:
    """[start, end), both aware (UTC), and the local date the period starts on."""

    start: datetime
    end: datetime
    first_day: date

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _first_day_of_period(frequency: Frequency, day: date) -> date:
    if frequency == Frequency.DAILY:
        return day
    if frequency == Frequency.WEEKLY:
        return day - timedelta(days=day.weekday())
    if frequency == Frequency.MONTHLY:
        return day.replace(day=1)
    raise ValueError(f"no periods for {frequency!r}")


def _next_first_day(frequency: Frequency, first_day: date) -> date:
    if frequency == Frequency.DAILY:
        return first_day + timedelta(days=1)
    if frequency == Frequency.WEEKLY:
        return first_day + timedelta(days=7)
    return (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_starting(frequency: Frequency, first_day: date, zone: ZoneInfo) -> Period:
    return Period(
        start=_midnight(first_day, zone),
        end=_midnight(_next_first_day(frequency, first_day), zone),
        first_day=first_day,
    )


def current_period(frequency: Frequency, now: datetime, zone: ZoneInfo) -> Period:
    """The period `now` falls in (not over yet)."""
    local_day = now.astimezone(zone).date()
    return period_starting(frequency, _first_day_of_period(frequency, local_day), zone)


def previous_period(frequency: Frequency, period: Period, zone: ZoneInfo) -> Period:
    day_before = period.first_day - timedelta(days=1)
    return period_starting(frequency, _first_day_of_period(frequency, day_before), zone)


def last_complete_period(frequency: Frequency, now: datetime, zone: ZoneInfo) -> Period:
    """The latest period that has ended at `now`: what a report sent at `now` is about."""
    return previous_period(frequency, current_period(frequency, now, zone), zone)


def recent_months(now: datetime, zone: ZoneInfo, count: int = 3) -> list[Period]:
    """This month (so far: its end is in the future) and the `count - 1` before it, newest
    first: the check page's downtime table."""
    months = [current_period(Frequency.MONTHLY, now, zone)]
    while len(months) < count:
        months.append(previous_period(Frequency.MONTHLY, months[-1], zone))
    return months
