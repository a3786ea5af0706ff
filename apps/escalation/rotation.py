"""On-call rotations, as pure rules: who is on call at a given moment.

A rotation hands off at a local wall-clock time (e.g. 09:00 Europe/Riga) every day or every
week, cycling through its members in order from a start date. Handoffs follow the wall clock
across daylight-saving changes (09:00 stays 09:00). Overrides (swaps, cover) win over the
schedule for their interval; the latest-created override wins where they overlap.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Cadence(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Override:
    member: int
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class RotationSpec:
    members: tuple[int, ...]
    start_date: date  # the first shift begins at handoff_time on this local date
    handoff_time: time
    timezone: str
    cadence: Cadence = Cadence.WEEKLY
    overrides: tuple[Override, ...] = ()


def shift_index(spec: RotationSpec, at: datetime) -> int | None:
    """The number of the shift running at `at` (0 for the first), or None before the start."""
    zone = ZoneInfo(spec.timezone)
    local = at.astimezone(zone)
    day = local.date()
    # Before today's handoff the previous day's shift is still running.
    handoff_today = datetime.combine(day, spec.handoff_time, tzinfo=zone)
    if at < handoff_today:
        day -= timedelta(days=1)
    days = (day - spec.start_date).days
    if days < 0:
        return None
    return days // 7 if spec.cadence == Cadence.WEEKLY else days


def covering_override(spec: RotationSpec, at: datetime) -> Override | None:
    """The override in force at `at` (the one starting last, where several overlap), if any."""
    for override in sorted(spec.overrides, key=lambda o: o.starts_at, reverse=True):
        if override.starts_at <= at < override.ends_at:
            return override
    return None


def on_call(spec: RotationSpec, at: datetime) -> int | None:
    """The member on call at `at`, or None when the rotation is empty or has not started."""
    override = covering_override(spec, at)
    if override is not None:
        return override.member
    if not spec.members:
        return None
    index = shift_index(spec, at)
    if index is None:
        return None
    return spec.members[index % len(spec.members)]


def handoffs(spec: RotationSpec, after: datetime, count: int = 5) -> list[tuple[datetime, int]]:
    """The next `count` scheduled handoffs after `after`: (when, who takes over)."""
    zone = ZoneInfo(spec.timezone)
    step = 7 if spec.cadence == Cadence.WEEKLY else 1
    day = max(spec.start_date, after.astimezone(zone).date() - timedelta(days=step))
    found = []
    while len(found) < count and spec.members:
        offset = (day - spec.start_date).days
        if offset % step == 0:
            moment = datetime.combine(day, spec.handoff_time, tzinfo=zone)
            if moment > after:
                found.append((moment, spec.members[(offset // step) % len(spec.members)]))
        day += timedelta(days=1)
    return found
