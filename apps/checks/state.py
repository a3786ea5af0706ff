"""The check state machine: pure rules, no ORM, no HTTP, no Celery. Every function takes `now`.

                 success                deadline passes            grace passes
        new ────────────────▶ up ───────────────────▶ late ───────────────────▶ down
                              ▲  ◀─────── success ──────┘                        │
                              └──────────────────── success ────────────────────┘
        any counted status ── fail (or non-zero exit) ──▶ down
        paused: ignored by sweeps until a success or fail ping that came after the pause resumes it.

A check's status is *derived* from the facts the ping path stores (its last counted signal and
when it came) and the current time. The ping path never makes a transition: a success on an UP
check only moves the deadline forward, and any other counted ping marks the check due now. The
sweeper then calls `evaluate` and carries out what it returns (flip, incident, outbox), so every
transition, and its history, is written in one place.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .schedule import Deadlines, deadlines_after


class Status(StrEnum):
    NEW = "new"
    UP = "up"
    LATE = "late"
    DOWN = "down"
    PAUSED = "paused"


class Signal(StrEnum):
    """Ping outcomes that count for the state: start and log pings do not change a status."""

    SUCCESS = "success"
    FAIL = "fail"


class Reason(StrEnum):
    FIRST_PING = "first_ping"
    SUCCESS = "success"
    RESUMED = "resumed"
    MISSED_DEADLINE = "missed_deadline"  # up -> late: the expected ping did not come
    MISSED_HEARTBEAT = "missed_heartbeat"  # late -> down: grace passed too
    FAILURE_SIGNAL = "failure_signal"  # a fail ping or a non-zero exit status


# The only status a success ping keeps without a transition: the ping path just moves the
# deadline forward. For every other status the ping path marks the check due now and the
# sweeper, the one place that makes transitions, records the flip and any incident change.
UP_ON_SUCCESS = frozenset({Status.UP})


@dataclass(frozen=True)
class CheckSnapshot:
    status: Status
    period: timedelta
    grace: timedelta
    last_ping_at: datetime | None = None
    last_signal: Signal | None = None
    paused_at: datetime | None = None


@dataclass(frozen=True)
class Evaluation:
    """What the check's status should be at `now`, when it became so, and when to look again."""

    status: Status
    reason: Reason | None
    changed: bool
    # When the new status really began: a missed deadline is backdated to the deadline, not to
    # the moment a (possibly delayed) sweep noticed it.
    changed_at: datetime | None
    alert_after: datetime | None
    deadlines: Deadlines | None = None

    @property
    def opens_incident(self) -> bool:
        return self.changed and self.status == Status.DOWN

    @property
    def resolves_incident(self) -> bool:
        return self.changed and self.status == Status.UP


def evaluate(snapshot: CheckSnapshot, now: datetime, skew_allowance: timedelta) -> Evaluation:
    """Derive the status a check must have at `now` from its stored facts.

    Returns the target status, the reason for a change, when it happened, and the next
    `alert_after` (None when nothing can change without a new ping). Repeating it is harmless:
    an unchanged snapshot evaluates to `changed=False`.
    """
    previous = snapshot.status
    if snapshot.last_signal is None or snapshot.last_ping_at is None:
        return Evaluation(previous, None, False, None, None)
    if previous == Status.PAUSED and not _pinged_since_pause(snapshot):
        return Evaluation(previous, None, False, None, None)

    if snapshot.last_signal == Signal.FAIL:
        return _result(previous, Status.DOWN, Reason.FAILURE_SIGNAL, snapshot.last_ping_at, None)

    deadlines = deadlines_after(
        snapshot.last_ping_at, snapshot.period, snapshot.grace, skew_allowance
    )
    if now >= deadlines.down_at:
        result = _result(previous, Status.DOWN, Reason.MISSED_HEARTBEAT, deadlines.down_at, None)
    elif now >= deadlines.late_at:
        result = _result(
            previous, Status.LATE, Reason.MISSED_DEADLINE, deadlines.late_at, deadlines.down_at
        )
    else:
        reason = {Status.NEW: Reason.FIRST_PING, Status.PAUSED: Reason.RESUMED}.get(
            previous, Reason.SUCCESS
        )
        result = _result(previous, Status.UP, reason, snapshot.last_ping_at, deadlines.late_at)
    return Evaluation(
        result.status,
        result.reason,
        result.changed,
        result.changed_at,
        result.alert_after,
        deadlines,
    )


def _pinged_since_pause(snapshot: CheckSnapshot) -> bool:
    """A ping that came after the pause resumes the check."""
    if snapshot.paused_at is None or snapshot.last_ping_at is None:
        return False
    return snapshot.last_ping_at > snapshot.paused_at


def _result(
    previous: Status,
    status: Status,
    reason: Reason,
    changed_at: datetime,
    alert_after: datetime | None,
) -> Evaluation:
    changed = previous != status
    return Evaluation(
        status,
        reason if changed else None,
        changed,
        changed_at if changed else None,
        alert_after,
    )
