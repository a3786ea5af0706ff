"""A small reference model of issue 3's rules for a period + grace check, written apart from
apps/checks/state.py so that the property-based test can hold the real code against it.

Scope: a period schedule, grace, the clock-skew allowance, failure and recovery thresholds,
transient exit statuses with their limit, start and log pings, runs without rid. No cron, no
max runtime, no progress timeout, no keywords, no retries, no flapping, no pause, no blind
windows, no job clock offset (those have their own table-driven tests).

The rules as the model reads them (issue 3 and state.py's docstring):
- A check with no finishing ping is new and never alerts; start and log pings do not check in.
- A finishing ping (success, fail, exit status) is a check-in. The check is late at
  last check-in + period + allowance and down (missed heartbeat) `grace` after that.
- A success takes a new, up or late check up. A down check needs `recovery_threshold`
  successes in a row; a counted failure breaks the row.
- A failure counts; at `failure_threshold` failures in a row (a success resets the count) the
  check goes down (failure signal). Below it the check-in still proves the job runs: a new or
  late check is up again.
- A transient exit status (75) is not counted at once: a success before its period (plus the
  allowance) has passed heals it; otherwise it counts as one failure when that time comes.
  The period is measured from the oldest unhealed transient failure. More than
  `transient_limit` transient failures in a row count as one failure at once and clear the
  earlier ones. Within the limit it is a check-in that neither breaks nor extends a row of
  successes.
- At one instant, deadlines come before a ping received at that instant, and a transient
  failure's deadline comes before the heartbeat deadlines.
- An incident opens when the check goes down and is resolved when it comes back up.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

TRANSIENT_EXIT_STATUSES = frozenset({75})


@dataclass
class Incident:
    kind: str
    opened_at: datetime
    resolved_at: datetime | None = None


@dataclass
class ReferenceCheck:
    period: timedelta
    grace: timedelta
    allowance: timedelta
    failure_threshold: int = 1
    recovery_threshold: int = 1
    transient_limit: int = 3

    status: str = "new"
    last_checkin: datetime | None = None
    failures_in_a_row: int = 0
    successes_while_down: int = 0
    unhealed_transients: int = 0
    oldest_unhealed_transient: datetime | None = None
    open_runs: int = 0
    runs: int = 0
    outcomes: list[str] = field(default_factory=list)  # per ping, in order
    transitions: list[tuple[str, str, datetime]] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)

    # --- Time ---------------------------------------------------------------------------

    def pending_deadlines(self) -> list[tuple[datetime, int, str]]:
        """(when, tie order, what) of every deadline that is still ahead of the check."""
        pending = []
        if self.oldest_unhealed_transient is not None:
            heal_by = self.oldest_unhealed_transient + self.period + self.allowance
            pending.append((heal_by, 0, "transient"))
        if self.status in ("up", "late"):
            late_at = self.last_checkin + self.period + self.allowance
            if self.status == "up":
                pending.append((late_at, 1, "late"))
            pending.append((late_at + self.grace, 2, "down"))
        return pending

    def next_deadline(self) -> datetime | None:
        pending = self.pending_deadlines()
        return min(pending)[0] if pending else None

    def advance(self, now: datetime) -> None:
        """Apply every deadline at or before `now`, earliest first."""
        while True:
            due = [d for d in self.pending_deadlines() if d[0] <= now]
            if not due:
                return
            at, _, what = min(due)
            if what == "transient":
                self.unhealed_transients = 0
                self.oldest_unhealed_transient = None
                self._count_failure(at)
            elif what == "late":
                self._become("late", at)
            else:
                self._become("down", at, kind="missed_heartbeat")

    # --- Pings ----------------------------------------------------------------------------

    def ping(self, kind: str, exit_status: int | None, at: datetime) -> None:
        self.advance(at)
        if kind == "start":
            self.outcomes.append("start")
            self.open_runs += 1
            self.runs += 1
            return
        if kind == "log":
            self.outcomes.append("log")
            return

        # A finishing ping closes the newest open run, or is a run of its own.
        if self.open_runs:
            self.open_runs -= 1
        else:
            self.runs += 1
        self.last_checkin = at
        if kind == "success":
            self.outcomes.append("success")
            self._success(at)
        elif exit_status in TRANSIENT_EXIT_STATUSES:
            self.outcomes.append("transient")
            if self.unhealed_transients < self.transient_limit:
                self.unhealed_transients += 1
                if self.oldest_unhealed_transient is None:
                    self.oldest_unhealed_transient = at
                self._alive(at)
            else:
                self.unhealed_transients = 0
                self.oldest_unhealed_transient = None
                self._count_failure(at)
        else:
            self.outcomes.append("fail")
            self._count_failure(at)

    def _success(self, at: datetime) -> None:
        self.failures_in_a_row = 0
        self.unhealed_transients = 0
        self.oldest_unhealed_transient = None
        if self.status != "down":
            self._become("up", at)
            return
        self.successes_while_down += 1
        if self.successes_while_down >= self.recovery_threshold:
            self._become("up", at)

    def _count_failure(self, at: datetime) -> None:
        self.failures_in_a_row += 1
        self.successes_while_down = 0
        if self.status == "down":
            return
        if self.failures_in_a_row >= self.failure_threshold:
            self._become("down", at, kind="failure_signal")
        else:
            self._alive(at)

    def _alive(self, at: datetime) -> None:
        if self.status in ("new", "late"):
            self._become("up", at)

    def _become(self, status: str, at: datetime, kind: str | None = None) -> None:
        if status == self.status:
            return
        self.transitions.append((self.status, status, at))
        if status == "down":
            self.incidents.append(Incident(kind=kind, opened_at=at))
        elif self.status == "down":
            self.incidents[-1].resolved_at = at
        if status == "up":
            self.successes_while_down = 0
        self.status = status

    @property
    def open_incidents(self) -> int:
        return sum(1 for i in self.incidents if i.resolved_at is None)
