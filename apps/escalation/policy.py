"""Escalation, as pure rules: which step of a policy is due, for whom, and when the next one is.

An incident carries a frozen copy of the policy it started with (`PolicySnapshot`), so editing a
policy never confuses an escalation under way, and its position in it (`Position`: round, next
step, when that step is due). The beat-driven sweep calls `advance` with the current time; it
returns the steps to fire now and the new position, which is stored on the incident. Nothing
here sleeps or schedules tasks: a lost worker loses nothing, the next sweep carries on.

    step 0 ──wait──▶ step 1 ──wait──▶ … last step ──wait──▶ (repeat from step 0, R times)
       ──▶ finished ──▶ reminders every `reminder_interval` (if set) until acknowledged/resolved
    acknowledge: stops everything; after `ack_timeout` (if set) a still-failing incident is
    triggered again and escalation restarts from step 0.
    "not me": the next step fires now.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum


class TargetKind(StrEnum):
    USER = "user"  # a team member, through their own contact methods
    CHANNEL = "channel"  # a team channel (webhook, Slack, ntfy, email list)
    ROTATION = "rotation"  # whoever is on call in a rotation at the time the step fires
    TEAM = "team"  # every member of the team (the implicit policy of a team without one)


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    id: int

    def key(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class StepSnapshot:
    wait: timedelta  # after this step fires, how long until the next one
    targets: tuple[Target, ...]
    severities: frozenset[str] = frozenset()  # empty: every severity


@dataclass(frozen=True)
class PolicySnapshot:
    steps: tuple[StepSnapshot, ...]
    repeat: int = 0  # how many times the whole policy runs again after the first round
    ack_timeout: timedelta | None = None
    reminder_interval: timedelta | None = None
    severities: frozenset[str] = frozenset()  # empty: every severity

    def applies_to(self, severity: str) -> bool:
        return not self.severities or severity in self.severities


@dataclass(frozen=True)
class Position:
    round: int = 0  # 0 for the first run through the steps, then 1..repeat
    step: int = 0  # the next step to fire
    due_at: datetime | None = None  # when it fires; None: nothing more to do
    finished: bool = False  # all rounds done; only reminders remain
    reminders: int = 0
    # How many times escalation restarted from step 0 (acknowledgment timeouts); it keeps the
    # notifications of each restart distinct from those of the earlier runs.
    epoch: int = 0


@dataclass(frozen=True)
class Firing:
    """One step (or a reminder) to carry out now."""

    round: int
    step: int  # -1 for a reminder
    targets: tuple[Target, ...]
    at: datetime
    reminder: int = 0

    @property
    def is_reminder(self) -> bool:
        return self.step < 0


@dataclass
class Advance:
    position: Position
    firings: list[Firing] = field(default_factory=list)


def start(policy: PolicySnapshot, opened_at: datetime) -> Position:
    """The position of a new (or re-triggered) incident: step 0 is due at once."""
    if not policy.steps:
        return Position(due_at=None, finished=True)
    return Position(round=0, step=0, due_at=opened_at)


def advance(policy: PolicySnapshot, position: Position, *, severity: str, now: datetime) -> Advance:
    """Fire every step due by `now`, in order, and return them with the new position.

    A step limited to other severities is skipped (it fires for nobody) but its wait still
    counts, so the timing of later steps does not depend on the severity. Repeating this call
    with the returned position is harmless: nothing fires twice.
    """
    result = Advance(position)
    if not policy.applies_to(severity):
        result.position = replace(position, due_at=None, finished=True)
        return result
    for _ in range(len(policy.steps) * (policy.repeat + 1) + 1000):
        pos = result.position
        if pos.due_at is None or pos.due_at > now:
            break
        if pos.finished:
            result.firings.append(
                Firing(pos.round, -1, _all_targets(policy, severity), pos.due_at, pos.reminders + 1)
            )
            result.position = replace(
                pos, reminders=pos.reminders + 1, due_at=pos.due_at + policy.reminder_interval
            )
            continue
        step = policy.steps[pos.step]
        if not step.severities or severity in step.severities:
            result.firings.append(Firing(pos.round, pos.step, step.targets, pos.due_at))
        result.position = _after_step(policy, pos, pos.due_at + step.wait)
    return result


def escalate_now(policy: PolicySnapshot, position: Position, *, now: datetime) -> Position:
    """ "Not me": make the next step due now (the caller then calls `advance`)."""
    if position.finished or position.due_at is None:
        return position
    return replace(position, due_at=now)


def acknowledgment_expired(
    policy: PolicySnapshot, acknowledged_at: datetime, now: datetime
) -> bool:
    return policy.ack_timeout is not None and now >= acknowledged_at + policy.ack_timeout


def next_wakeup(
    policy: PolicySnapshot, position: Position, acknowledged_at: datetime | None
) -> datetime | None:
    """When the sweep must look at this incident again (stored, indexed, on the incident)."""
    if acknowledged_at is not None:
        return acknowledged_at + policy.ack_timeout if policy.ack_timeout else None
    return position.due_at


def _after_step(policy: PolicySnapshot, pos: Position, next_due: datetime) -> Position:
    if pos.step + 1 < len(policy.steps):
        return replace(pos, step=pos.step + 1, due_at=next_due)
    if pos.round < policy.repeat:
        return replace(pos, round=pos.round + 1, step=0, due_at=next_due)
    if policy.reminder_interval:
        return replace(
            pos, finished=True, due_at=next_due - _last_wait(policy) + policy.reminder_interval
        )
    return replace(pos, finished=True, due_at=None)


def _last_wait(policy: PolicySnapshot) -> timedelta:
    return policy.steps[-1].wait


def _all_targets(policy: PolicySnapshot, severity: str) -> tuple[Target, ...]:
    """Reminders go to everyone the policy reached for this severity, once each."""
    seen: dict[str, Target] = {}
    for step in policy.steps:
        if not step.severities or severity in step.severities:
            for target in step.targets:
                seen.setdefault(target.key(), target)
    return tuple(seen.values())


def snapshot_to_json(policy: PolicySnapshot) -> dict:
    return {
        "steps": [
            {
                "wait": step.wait.total_seconds(),
                "targets": [[t.kind.value, t.id] for t in step.targets],
                "severities": sorted(step.severities),
            }
            for step in policy.steps
        ],
        "repeat": policy.repeat,
        "ack_timeout": policy.ack_timeout.total_seconds() if policy.ack_timeout else None,
        "reminder_interval": (
            policy.reminder_interval.total_seconds() if policy.reminder_interval else None
        ),
        "severities": sorted(policy.severities),
    }


def snapshot_from_json(data: dict) -> PolicySnapshot:
    def seconds(value):
        return timedelta(seconds=value) if value else None

    return PolicySnapshot(
        steps=tuple(
            StepSnapshot(
                wait=timedelta(seconds=step["wait"]),
                targets=tuple(Target(TargetKind(kind), int(id_)) for kind, id_ in step["targets"]),
                severities=frozenset(step.get("severities", ())),
            )
            for step in data.get("steps", ())
        ),
        repeat=data.get("repeat", 0),
        ack_timeout=seconds(data.get("ack_timeout")),
        reminder_interval=seconds(data.get("reminder_interval")),
        severities=frozenset(data.get("severities", ())),
    )


def position_to_json(position: Position) -> dict:
    return {
        "round": position.round,
        "step": position.step,
        "due_at": position.due_at.isoformat() if position.due_at else None,
        "finished": position.finished,
        "reminders": position.reminders,
        "epoch": position.epoch,
    }


def position_from_json(data: dict | None) -> Position:
    data = data or {}
    due = data.get("due_at")
    return Position(
        round=data.get("round", 0),
        step=data.get("step", 0),
        due_at=datetime.fromisoformat(due) if due else None,
        finished=data.get("finished", False),
        reminders=data.get("reminders", 0),
        epoch=data.get("epoch", 0),
    )
