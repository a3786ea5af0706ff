"""Schedules: when a check's next ping is expected. Pure functions of the last check-in and the
check's settings; no ORM, no clock.

Three kinds:
- period: every `period` after the last check-in;
- cron: a 5-field cron expression (or @hourly, @daily, @weekly, @monthly, @yearly) in an IANA
  timezone, evaluated by cronsim, which follows Debian cron across daylight-saving changes (a
  02:30 job on a day that skips 02:30 runs at 03:00; a 01:30 job on a day that has 01:30 twice
  runs once);
- oncalendar: a systemd OnCalendar expression, evaluated by the oncalendar library.

The clock-skew allowance is added before a check is declared late or down: web nodes stamp pings
with the database clock and the sweeper judges with the same clock, so the allowance absorbs
commit latency, not a web node's own clock.

A job host's own clock (seen through the `ts` a ping carries) matters only where the host's
clock decides when the job runs:
- period: nothing. Lateness is judged from when the last ping arrived, on Tocsin's clock, so a
  host whose clock is off changes no deadline and gets no extra grace;
- cron and OnCalendar: the host's cron fires by its own clock, so a host 90 s slow runs the
  03:00 job at 03:01:30 by Tocsin's. Expected times are shifted by the host's signed offset
  (the median of its last few pings, so one odd ping moves nothing), capped at
  MAX_HOST_SHIFT: a clock that jumps by an hour is flagged, not silently followed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from oncalendar import OnCalendar, OnCalendarError

NEVER = datetime.max.replace(tzinfo=UTC)
# A period below a minute is finer than cron (and than Healthchecks) can express.
MIN_INTERVAL = timedelta(minutes=1)
# Thresholds that time one run (grace, maximum run time, progress timeout) may be a few
# seconds, for short jobs: the sweeper runs every few seconds (SWEEP_INTERVAL) and its
# deadlines carry full timestamps, so a 20-second limit is judged at 20 seconds (plus the
# clock-skew allowance), not rounded to a minute.
MIN_THRESHOLD = timedelta(seconds=1)
MAX_INTERVAL = timedelta(days=365)
MAX_EXPRESSION_LENGTH = 200
MAX_SKIPPED_OCCURRENCES = 3600  # one repeated hour of per-second OnCalendar occurrences
CRON_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class ScheduleKind(StrEnum):
    PERIOD = "period"
    CRON = "cron"
    ONCALENDAR = "oncalendar"


# How people write the kinds (systemd spells it OnCalendar), for forms and pages.
SCHEDULE_KIND_LABELS = {
    ScheduleKind.PERIOD: "Period",
    ScheduleKind.CRON: "Cron",
    ScheduleKind.ONCALENDAR: "OnCalendar",
}


class ScheduleError(ValueError):
    """An expression, timezone or interval that cannot be used; the message is for the form."""


@dataclass(frozen=True)
class Schedule:
    kind: ScheduleKind = ScheduleKind.PERIOD
    period: timedelta = timedelta(days=1)
    expression: str = ""
    timezone: str = "UTC"

    def next_after(self, moment: datetime) -> datetime:
        """The first expected check-in strictly after `moment` (aware, returned in UTC)."""
        if moment >= NEVER:
            return NEVER
        if self.kind == ScheduleKind.PERIOD:
            return later_by(moment, self.period)
        zone = _zone(self.timezone)
        local = moment.astimezone(zone)
        try:
            if self.kind == ScheduleKind.CRON:
                occurrences = iter(CronSim(_cron_fields(self.expression), local))
            else:
                occurrences = iter(OnCalendar(self.expression, local))
            # From the second pass of a repeated hour (fall-back day), both libraries first
            # yield that hour's first-pass occurrences, which are already past: skip them.
            for _ in range(MAX_SKIPPED_OCCURRENCES + 1):
                upcoming = next(occurrences).astimezone(UTC)
                if upcoming > moment:
                    break
        except StopIteration:
            # An OnCalendar expression whose last occurrence is past: nothing is expected.
            return NEVER
        except (CronSimError, OnCalendarError) as exc:
            raise ScheduleError(str(exc)) from None
        return upcoming

    def upcoming(self, after: datetime, count: int = 5) -> list[datetime]:
        """The next `count` expected times after `after`, for the form's preview."""
        times, moment = [], after
        for _ in range(count):
            moment = self.next_after(moment)
            if moment == NEVER:
                break
            times.append(moment)
        return times


def later_by(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`, saturating at NEVER instead of overflowing past year 9999."""
    try:
        return min(moment + delta, NEVER)
    except OverflowError:
        return NEVER


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(
            f"Unknown timezone “{name}”: use an IANA name such as Europe/Riga."
        ) from None


def valid_timezone_name(name: str) -> str:
    """`name` if it is a usable IANA zone, else ScheduleError. Checked even for period schedules,
    which do not use it: switching the kind later must not meet a zone that does not exist."""
    _zone(name)
    return name


def _cron_fields(expression: str) -> str:
    expression = " ".join(expression.split())
    return CRON_ALIASES.get(expression.lower(), expression)


def validate_schedule(schedule: Schedule, *, now: datetime) -> Schedule:
    """Return the schedule if usable, else raise ScheduleError with a clear message."""
    if schedule.kind == ScheduleKind.PERIOD:
        message = interval_error(schedule.period, "Period")
        if message:
            raise ScheduleError(message)
        return schedule
    expression = schedule.expression.strip()
    if not expression:
        raise ScheduleError("Enter an expression for this schedule.")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ScheduleError(f"The expression must be at most {MAX_EXPRESSION_LENGTH} characters.")
    _zone(schedule.timezone)
    if schedule.kind == ScheduleKind.CRON:
        fields = _cron_fields(expression)
        if fields.startswith("@"):
            raise ScheduleError(
                "Unknown cron shortcut: use @hourly, @daily, @weekly, @monthly or @yearly."
            )
        if len(fields.split()) != 5:
            raise ScheduleError(
                "A cron expression has 5 fields: minute hour day-of-month month day-of-week."
            )
        try:
            CronSim(fields, now)
        except CronSimError as exc:
            raise ScheduleError(f"Invalid cron expression: {exc}.") from None
    else:
        try:
            OnCalendar(expression, now.astimezone(_zone(schedule.timezone)))
        except OnCalendarError as exc:
            raise ScheduleError(f"Invalid OnCalendar expression: {exc}.") from None
    if not schedule.upcoming(now, 1):
        raise ScheduleError("This expression never matches a time in the future.")
    return schedule


def interval_error(
    value: timedelta | None, label: str, minimum: timedelta = MIN_INTERVAL
) -> str | None:
    """A clear message when a duration is outside `minimum` (MIN_INTERVAL or MIN_THRESHOLD)
    .. 365 days, else None."""
    if value is None:
        return f"{label} is required."
    if value < minimum:
        return f"{label} must be at least {spelled_duration(minimum)}."
    if value > MAX_INTERVAL:
        return f"{label} must be at most 365 days."
    return None


def spelled_duration(duration: timedelta) -> str:
    """1 minute, 5 minutes, 1 second, 90 seconds: for messages."""
    seconds = int(duration.total_seconds())
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return "1 second" if seconds == 1 else f"{seconds} seconds"


# How far a host's clock may move a cron or OnCalendar check's expected times, either way.
MAX_HOST_SHIFT = timedelta(minutes=15)
# The host offset is the median of this many recent pings that carried the job's time.
HOST_OFFSET_SAMPLES = 5


@dataclass(frozen=True)
class HostClock:
    """What Tocsin makes of a job host's clock. `offset` is when pings arrived minus when the
    host said it sent them (positive: the host's clock is behind), smoothed; `shift` is what a
    clock-scheduled check's expected times move by: the offset, capped at MAX_HOST_SHIFT."""

    offset: timedelta = timedelta(0)
    shift: timedelta = timedelta(0)

    @property
    def is_capped(self) -> bool:
        return self.shift != self.offset


def host_clock(recent_offsets: Sequence[timedelta]) -> HostClock:
    """The smoothed, capped host offset from the offsets of its most recent pings (oldest
    first); no samples: a host assumed on time."""
    if not recent_offsets:
        return HostClock()
    ordered = sorted(recent_offsets[-HOST_OFFSET_SAMPLES:])
    offset = ordered[(len(ordered) - 1) // 2]
    return HostClock(offset=offset, shift=max(-MAX_HOST_SHIFT, min(MAX_HOST_SHIFT, offset)))


@dataclass(frozen=True)
class Deadlines:
    expected_at: datetime  # when the (first) missed check-in was due
    late_at: datetime  # expected_at plus the skew allowance
    down_at: datetime  # the last tolerated expected check-in, plus grace and allowances


def deadlines_after(
    last_checkin_at: datetime,
    schedule: Schedule,
    grace: timedelta,
    skew_allowance: timedelta,
    *,
    missed_tolerance: int = 1,
    host_shift: timedelta = timedelta(0),
) -> Deadlines:
    """Deadlines after a check-in.

    A check-in that arrives a little early (within the allowance) counts for the run it was
    meant for, so the next expectation is computed from `last_checkin_at + allowance`. With a
    missed-run tolerance of M, the check goes down only after the M-th expected check-in in a
    row is missed. For cron and OnCalendar schedules, `host_shift` (HostClock.shift, signed)
    says how far behind Tocsin's clock the job host's is: the schedule is read on the host's
    clock and its times brought back to Tocsin's. Period schedules ignore it (see above).
    """
    if schedule.kind == ScheduleKind.PERIOD:
        shift, early_tolerance = timedelta(0), timedelta(0)
    else:
        shift, early_tolerance = host_shift, skew_allowance

    def on_tocsin_clock(host_time: datetime) -> datetime:
        return NEVER if host_time >= NEVER else later_by(host_time, shift)

    checkin_on_host_clock = later_by(last_checkin_at, -shift)
    expected_on_host = schedule.next_after(later_by(checkin_on_host_clock, early_tolerance))
    last_tolerated_on_host = expected_on_host
    for _ in range(max(1, missed_tolerance) - 1):
        following = schedule.next_after(last_tolerated_on_host)
        if following == NEVER:
            break  # fewer than M occurrences remain: missing the last one is enough
        last_tolerated_on_host = following
    expected_at = on_tocsin_clock(expected_on_host)
    return Deadlines(
        expected_at=expected_at,
        late_at=later_by(expected_at, skew_allowance),
        down_at=later_by(on_tocsin_clock(last_tolerated_on_host), skew_allowance + grace),
    )


def describe_host_clock(clock: HostClock, kind: ScheduleKind) -> str:
    """One or two sentences about a host clock that is off, for the check page and alerts."""
    offset = clock.offset.total_seconds()
    direction = "behind" if offset > 0 else "ahead of"
    text = f"The job host's clock is {_spelled_offset(abs(offset))} {direction} Tocsin's."
    if kind == ScheduleKind.PERIOD:
        return (
            f"{text} A period check is judged by when its pings arrive, so this moves no "
            f"deadline; fix the host's clock (NTP)."
        )
    later = "later" if clock.shift > timedelta(0) else "earlier"
    shift = _spelled_offset(abs(clock.shift.total_seconds()))
    if clock.is_capped:
        return (
            f"{text} That is more than Tocsin follows: its runs are expected at most {shift} "
            f"{later}, so it pages instead; fix the host's clock (NTP)."
        )
    return (
        f"{text} Its cron fires by that clock, so its runs are expected {shift} {later}; fix "
        f"the host's clock (NTP)."
    )


def _spelled_offset(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return "1 hour" if hours == 1 else f"{hours} hours"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{int(seconds // 60)} minutes"
    return f"{seconds:g} s"
