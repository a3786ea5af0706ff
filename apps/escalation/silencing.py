"""Silences and maintenance windows, as pure rules: does a silence cover a check at a moment?

A silence has an interval and matchers: specific checks, tags, an environment, or the whole
team. A maintenance window is a recurring silence: a cron expression in a timezone opens it,
and it stays open for a duration. Cron is evaluated by cronsim, in the window's timezone, so a
window at 02:30 local on a day without 02:30 opens when the wall clock reaches 03:00.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim


@dataclass(frozen=True)
class CheckFacts:
    id: str
    tags: frozenset[str]
    environment: str


@dataclass(frozen=True)
class Matchers:
    check_ids: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    environment: str = ""
    whole_team: bool = False

    def is_empty(self) -> bool:
        return not (self.check_ids or self.tags or self.environment or self.whole_team)

    def matches(self, check: CheckFacts) -> bool:
        """Any matcher that is set must match (they narrow each other); whole_team matches all."""
        if self.whole_team:
            return True
        if self.is_empty():
            return False
        if self.check_ids and check.id not in self.check_ids:
            return False
        if self.tags and not (self.tags & check.tags):
            return False
        return not (self.environment and check.environment != self.environment)


@dataclass(frozen=True)
class SilenceSpec:
    starts_at: datetime
    ends_at: datetime
    matchers: Matchers

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def covers(self, check: CheckFacts, at: datetime) -> bool:
        return self.active_at(at) and self.matchers.matches(check)


@dataclass(frozen=True)
class MaintenanceSpec:
    cron: str
    timezone: str
    duration: timedelta
    matchers: Matchers

    def window_at(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The window open at `at` as (start, end), or None."""
        local = at.astimezone(ZoneInfo(self.timezone))
        # The latest opening at or before `at`: cronsim iterates backwards from just after it.
        latest = next(iter(CronSim(self.cron, local + timedelta(seconds=1), reverse=True)))
        start = latest.astimezone(at.tzinfo)
        end = start + self.duration
        return (start, end) if start <= at < end else None

    def covers(self, check: CheckFacts, at: datetime) -> bool:
        return self.matchers.matches(check) and self.window_at(at) is not None

    def next_windows(self, after: datetime, count: int = 5) -> list[tuple[datetime, datetime]]:
        local = after.astimezone(ZoneInfo(self.timezone))
        it = iter(CronSim(self.cron, local))
        return [
            (start.astimezone(after.tzinfo), start.astimezone(after.tzinfo) + self.duration)
            for start in (next(it) for _ in range(count))
        ]
