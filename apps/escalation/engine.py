"""Escalation, carried out: the incident's frozen policy walked step by step from persisted
state, holds for dependencies and silences, and the actions people take (acknowledge, "not me",
silence from a link). Every function takes `now` and runs inside the caller's transaction;
notifications are owed as outbox rows (unique per incident, event, round, step and target),
so a retried or concurrent sweep never sends twice.

    open ──▶ suppressed (a parent check's incident is open) ──parent resolves──▶ released ─┐
      │                                                                                   │
      ├──▶ silenced (a silence or maintenance window covers the check) ──it ends──────────┤
      │                                                                                   ▼
      └──────────────────────────────────────────────────────────▶ escalating (policy.py)
    escalating ──acknowledge──▶ acknowledged ──ack timeout──▶ re-triggered: step 0 again
    any state ──resolve (by hand or recovery)──▶ resolved: "resolved" to whoever was told

Notifications are owed through apps/escalation/signals.py (`owe`): the notifications app
subscribes and writes the outbox rows in the same transaction.

`Incident.next_escalation_at` says when the beat-driven sweep must look at an incident again;
`Incident.hold` says why notifications are held back (`suppressed_by` / `silenced_by` say by
what; holds.py finds them). Nothing here sleeps or schedules a task. What people do (not me,
silences) is in actions.py.
"""

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from apps.bulk import insert_many, update_many
from apps.checks.models import Check, with_dependencies
from apps.incidents.models import Incident, IncidentEvent
from apps.teams.models import Membership

from .holds import covering_silence, open_parent_incident
from .models import EscalationPolicy, MaintenanceWindow, Rotation, Silence
from .policy import (
    Firing,
    PolicySnapshot,
    Position,
    StepSnapshot,
    Target,
    TargetKind,
    acknowledgment_expired,
    advance,
    next_wakeup,
    position_from_json,
    position_to_json,
    snapshot_from_json,
    snapshot_to_json,
    start,
)
from .rotation import on_call
from .signals import Owed, Recipient, owe, team_channels

logger = logging.getLogger(__name__)


def record(incident: Incident, kind: str, at: datetime, **detail) -> None:
    event = IncidentEvent(incident=incident, kind=kind, at=at, detail=detail)
    batch = _BATCH.get()
    if batch is not None:
        batch.events.append(event)
    else:
        event.save()


# --- many incidents at once ----------------------------------------------------------------------


@dataclass
class _Batch:
    """Escalation of many new incidents at once (a sweep's batch): what they look up is read
    once per team, and what they write (timeline events, escalation state, owed notifications)
    is written in bulk at the end. Only for incidents of checks without dependencies, which
    nothing else in the batch reads or changes."""

    now: datetime
    events: list = field(default_factory=list)
    owed: list = field(default_factory=list)
    policies: dict = field(default_factory=dict)
    default_policies: dict = field(default_factory=dict)
    _members: dict = field(default_factory=dict)
    _covers: dict = field(default_factory=dict)
    _rotations: dict = field(default_factory=dict)
    _channels: dict = field(default_factory=dict)

    def load_policies(self, checks) -> None:
        team_ids = {check.team_id for check in checks}
        own = {check.escalation_policy_id for check in checks if check.escalation_policy_id}
        found = EscalationPolicy.objects.filter(
            Q(id__in=own) | Q(team_id__in=team_ids, is_default=True)
        ).prefetch_related("steps")
        for policy in found:
            self.policies[policy.id] = policy
            if policy.is_default:
                self.default_policies[policy.team_id] = policy

    def policy_for(self, check: Check) -> tuple[PolicySnapshot, str]:
        policy = self.policies.get(check.escalation_policy_id)
        if policy is None or policy.team_id != check.team_id:
            policy = self.default_policies.get(check.team_id)
            if policy is not None and not policy.steps.all():
                # As policy_for_check: a default left without steps falls back to telling
                # every member (the steps are prefetched, so this costs no query).
                policy = None
        if policy is None:
            return implicit_policy(check.team_id), ""
        return policy.snapshot(), policy.name

    def members(self, team_id: int) -> dict:
        if team_id not in self._members:
            self._members[team_id] = dict(
                Membership.objects.filter(team_id=team_id).values_list("user_id", "user__username")
            )
        return self._members[team_id]

    def covers(self, team_id: int) -> tuple[list, list]:
        if team_id not in self._covers:
            self._covers[team_id] = (
                list(Silence.objects.filter(team_id=team_id).active_at(self.now)),
                list(MaintenanceWindow.objects.filter(team_id=team_id)),
            )
        return self._covers[team_id]

    def rotation(self, team_id: int, rotation_id: int):
        if (team_id, rotation_id) not in self._rotations:
            self._rotations[(team_id, rotation_id)] = Rotation.objects.filter(
                id=rotation_id, team_id=team_id
            ).first()
        return self._rotations[(team_id, rotation_id)]

    def channel_names(self, team_id: int) -> dict:
        if team_id not in self._channels:
            self._channels[team_id] = team_channels(team_id)
        return self._channels[team_id]


_BATCH: ContextVar[_Batch | None] = ContextVar("escalation_batch", default=None)


@contextmanager
def _batched(now: datetime):
    batch = _Batch(now=now)
    token = _BATCH.set(batch)
    try:
        yield batch
    finally:
        _BATCH.reset(token)


def start_escalations(incidents: list[Incident], *, now: datetime) -> None:
    """start_escalation for many just-opened incidents (a sweep's batch), in bulk. Incidents
    of checks with dependencies are started one by one, in order, as their holds need."""
    if not incidents:
        return
    linked = with_dependencies([incident.owner_id for incident in incidents])
    plain = [incident for incident in incidents if incident.owner_id not in linked]
    for incident in incidents:
        if incident.owner_id in linked:
            start_escalation(incident, now=now)
    if not plain:
        return
    with _batched(now) as batch:
        batch.load_policies([incident.owner for incident in plain])
        for incident in plain:
            policy, name = batch.policy_for(incident.owner)
            incident.policy_snapshot = snapshot_to_json(policy)
            incident.policy_name = name
            incident.escalation_position = EscalationState(position=start(policy, now)).dump()
            reconsider(incident, now=now, no_parents=True)
    insert_many(IncidentEvent, batch.events)
    update_many(Incident, plain, SAVED_FIELDS)
    owe(batch.owed, now=now)


def after_resolved_many(incidents: list[Incident], *, now: datetime) -> None:
    """after_resolved for many incidents at once, in two statements."""
    if not incidents:
        return
    for incident in incidents:
        incident.next_escalation_at = None
        incident.hold = ""
    ids = [incident.id for incident in incidents]
    Incident.objects.filter(id__in=ids).update(next_escalation_at=None, hold="")
    _release_held_by(ids, now=now)


def _release_held_by(incident_ids, *, now: datetime) -> None:
    """Incidents held back by these (now resolved) ones are looked at again shortly."""
    release_at = now + settings.DEPENDENCY_RELEASE_DELAY
    Incident.objects.filter(
        suppressed_by_id__in=incident_ids, hold=Incident.Hold.SUPPRESSED
    ).exclude(state=Incident.State.RESOLVED).update(next_escalation_at=release_at)


# --- which policy ------------------------------------------------------------------------------


def implicit_policy(team_id: int) -> PolicySnapshot:
    """A team without any policy: one step telling every member, no repeats (the behaviour
    before policies existed)."""
    return PolicySnapshot(steps=(StepSnapshot(timedelta(0), (Target(TargetKind.TEAM, team_id),)),))


def policy_for_check(check: Check) -> tuple[PolicySnapshot, str]:
    """The check's policy, else the team's default, else the implicit one; with its name."""
    policy = None
    if check.escalation_policy_id:
        policy = EscalationPolicy.objects.filter(
            id=check.escalation_policy_id, team_id=check.team_id
        ).first()
    if policy is None:
        policy = EscalationPolicy.objects.filter(team_id=check.team_id, is_default=True).first()
        if policy is not None and not policy.steps.exists():
            # A default left without steps (saved before that was refused) would tell nobody:
            # the team falls back to telling every member.
            policy = None
    if policy is None:
        return implicit_policy(check.team_id), ""
    return policy.snapshot(), policy.name


# --- position bookkeeping ----------------------------------------------------------------------


@dataclass
class EscalationState:
    """The incident's escalation JSON, unpacked: the position of policy.py, plus which event
    the first notification of the current run carries and whether it went out."""

    position: Position
    start_event: str = "down"
    notified: bool = False
    skipped_recorded: bool = False

    @classmethod
    def load(cls, incident: Incident) -> "EscalationState":
        data = incident.escalation_position or {}
        return cls(
            position=position_from_json(data),
            start_event=data.get("start_event", "down"),
            notified=data.get("notified", False),
            skipped_recorded=data.get("skipped_recorded", False),
        )

    def dump(self) -> dict:
        return position_to_json(self.position) | {
            "start_event": self.start_event,
            "notified": self.notified,
            "skipped_recorded": self.skipped_recorded,
        }


def frozen_policy(incident: Incident) -> PolicySnapshot:
    return snapshot_from_json(incident.policy_snapshot or {"steps": []})


SAVED_FIELDS = [
    "state",
    "policy_snapshot",
    "policy_name",
    "escalation_position",
    "next_escalation_at",
    "hold",
    "suppressed_by",
    "silenced_by",
    "silenced_by_window",
    "last_notified_at",
]


# --- firing ------------------------------------------------------------------------------------


def _recipients(incident: Incident, targets, now: datetime):
    """The dispatch recipients for a step's targets at `now`, and labels for the timeline:
    rotations resolve to whoever is on call now. Targets of another team (a stale snapshot)
    are dropped here; dispatch drops members who left and disabled channels."""
    team_id = incident.owner.team_id
    batch = _BATCH.get()
    if batch is not None:
        members = batch.members(team_id)
    else:
        members = dict(
            Membership.objects.filter(team_id=team_id).values_list("user_id", "user__username")
        )
    recipients, labels = {}, []

    def add_user(user_id: int) -> None:
        recipients[f"user:{user_id}"] = Recipient(user_id=user_id)

    for target in targets:
        if target.kind == TargetKind.USER:
            add_user(target.id)
            labels.append(members.get(target.id, f"user #{target.id} (not in the team)"))
        elif target.kind == TargetKind.CHANNEL:
            recipients[f"channel:{target.id}"] = Recipient(channel_id=target.id)
            labels.append(f"channel {_channel_name(target.id, team_id)}")
        elif target.kind == TargetKind.TEAM and target.id == team_id:
            for user_id in members:
                add_user(user_id)
            labels.append("everyone on the team")
        elif target.kind == TargetKind.ROTATION:
            if batch is not None:
                rotation = batch.rotation(team_id, target.id)
            else:
                rotation = Rotation.objects.filter(id=target.id, team_id=team_id).first()
            user_id = on_call(rotation.spec(), now) if rotation else None
            if user_id is None:
                record(
                    incident,
                    IncidentEvent.Kind.NOBODY_ON_CALL,
                    now,
                    rotation=target.id,
                    name=rotation.name if rotation else None,
                )
                continue
            add_user(user_id)
            labels.append(f"{members.get(user_id, user_id)} (on call in {rotation.name})")
    return list(recipients.values()), labels


def _channel_name(channel_id: int, team_id: int) -> str:
    batch = _BATCH.get()
    if batch is not None:
        name = batch.channel_names(team_id).get(channel_id)
    else:
        name = team_channels(team_id, {channel_id}).get(channel_id)
    return name if name is not None else f"#{channel_id} (deleted)"


def _fire(incident, firing: Firing, *, policy: PolicySnapshot, state: EscalationState, now) -> None:
    recipients, described = _recipients(incident, firing.targets, now)
    epoch = state.position.epoch
    if firing.is_reminder:
        # Reminders of one run are numbered; the run (epoch) keeps runs apart.
        event, round_, step = "reminder", epoch, firing.reminder
        record(incident, IncidentEvent.Kind.REMINDED, now, reminder=firing.reminder)
    else:
        event = "escalation" if state.notified else state.start_event
        round_ = epoch * (policy.repeat + 1) + firing.round
        step = firing.step
        record(
            incident,
            IncidentEvent.Kind.ESCALATED,
            now,
            step=firing.step + 1,
            steps=len(policy.steps),
            round=firing.round,
            event=event,
            targets=described,
        )
    owed = Owed(incident, event, tuple(recipients), round_, step)
    batch = _BATCH.get()
    if batch is not None:
        batch.owed.append(owed)
    else:
        owe([owed], now=now)
    state.notified = True
    incident.last_notified_at = now


def reconsider(incident: Incident, *, now: datetime, no_parents: bool = False) -> None:
    """The heart of it: decide the holds (dependency, acknowledgment, silence), fire what is
    due by `now`, and set when to look again. Changes the incident in memory; the caller holds
    its row lock and saves it with `save_state`. Calling it again at the same `now` fires
    nothing twice. `no_parents`: the caller knows that the check depends on no other."""
    policy = frozen_policy(incident)
    state = EscalationState.load(incident)

    if incident.hold == Incident.Hold.SUPPRESSED:
        parent = open_parent_incident(incident.owner)
        if parent is not None:
            if parent.id != incident.suppressed_by_id:
                incident.suppressed_by = parent
                record(incident, IncidentEvent.Kind.SUPPRESSED, now, **_parent_detail(parent))
            incident.next_escalation_at = None
            return
        incident.hold = ""
        record(incident, IncidentEvent.Kind.RELEASED, now, **_parent_detail(incident.suppressed_by))
        state.position = replace(start(policy, now), epoch=state.position.epoch)

    elif incident.state == Incident.State.TRIGGERED and not incident.hold and not state.notified:
        # Nobody was told yet (a dependent waiting for its parents to settle): a parent that
        # went down meanwhile holds it back.
        parent = None if no_parents else open_parent_incident(incident.owner)
        if parent is not None:
            _suppress(incident, parent, now=now)
            return

    if incident.state == Incident.State.ACKNOWLEDGED:
        if incident.acknowledged_at is None or not acknowledgment_expired(
            policy, incident.acknowledged_at, now
        ):
            incident.next_escalation_at = next_wakeup(
                policy, state.position, incident.acknowledged_at
            )
            incident.escalation_position = state.dump()
            return
        incident.state = Incident.State.TRIGGERED
        record(
            incident,
            IncidentEvent.Kind.RETRIGGERED,
            now,
            acknowledged_at=incident.acknowledged_at.isoformat(),
            ack_timeout_seconds=policy.ack_timeout.total_seconds(),
        )
        state = EscalationState(
            position=replace(start(policy, now), epoch=state.position.epoch + 1),
            start_event="retriggered",
        )

    batch = _BATCH.get()
    if batch is not None:
        silences, windows = batch.covers(incident.owner.team_id)
        cover = covering_silence(incident.owner, now, silences=silences, windows=windows)
    else:
        cover = covering_silence(incident.owner, now)
    if cover is not None:
        if (
            incident.hold != Incident.Hold.SILENCED
            or incident.silenced_by != cover.silence
            or incident.silenced_by_window != cover.window
        ):
            record(
                incident,
                IncidentEvent.Kind.SILENCED,
                now,
                until=cover.until.isoformat(),
                **cover.describe(),
            )
        incident.hold = Incident.Hold.SILENCED
        incident.silenced_by, incident.silenced_by_window = cover.silence, cover.window
        incident.next_escalation_at = cover.until
        incident.escalation_position = state.dump()
        return
    if incident.hold == Incident.Hold.SILENCED:
        incident.hold = ""
        record(incident, IncidentEvent.Kind.UNSILENCED, now, notified_before=state.notified)
        if not state.notified:
            state.start_event = "unsilenced"
        # Steps that fell due during the silence fire one at a time from now, not in a burst.
        due = state.position.due_at
        if due is not None and due < now:
            state.position = replace(state.position, due_at=now)

    if not policy.applies_to(incident.severity) and not state.skipped_recorded:
        record(
            incident,
            IncidentEvent.Kind.POLICY_SKIPPED,
            now,
            severity=incident.severity,
            policy_severities=sorted(policy.severities),
        )
        state.skipped_recorded = True
    result = advance(policy, state.position, severity=incident.severity, now=now)
    for firing in result.firings:
        _fire(incident, firing, policy=policy, state=state, now=now)
    state.position = result.position
    incident.escalation_position = state.dump()
    incident.next_escalation_at = next_wakeup(policy, state.position, None)


def _parent_detail(parent: Incident | None) -> dict:
    if parent is None:
        return {}
    return {"parent_incident": parent.id, "parent_check": parent.owner.name}


def save_state(incident: Incident) -> None:
    """Write the escalation fields `reconsider` changed."""
    incident.save(update_fields=SAVED_FIELDS)


# --- entry points from incident services ---------------------------------------------------------


def start_escalation(incident: Incident, *, now: datetime) -> None:
    """Freeze the policy on a just-opened incident and fire step 0, unless a parent check's
    incident is open (suppressed) or a silence covers the check (silenced). Runs inside the
    transaction that opened the incident (the sweeper's)."""
    check = incident.owner
    policy, name = policy_for_check(check)
    incident.policy_snapshot = snapshot_to_json(policy)
    incident.policy_name = name
    incident.escalation_position = EscalationState(position=start(policy, now)).dump()
    parent = open_parent_incident(check)
    if parent is not None:
        _suppress(incident, parent, now=now)
    elif check.depends_on.exists():
        # The parent may go down in this same sweep, a moment after this check (the sweep
        # takes checks in deadline order): wait for the next escalation sweeps before telling
        # anyone, so that a herd of dependents failing with their parent stays quiet.
        incident.next_escalation_at = now + dependency_settle_delay()
    else:
        reconsider(incident, now=now)
    save_state(incident)
    _suppress_dependents(incident, now=now)


def dependency_settle_delay() -> timedelta:
    """How long a new incident of a check with dependencies waits for a parent to go down too:
    two escalation sweeps."""
    return timedelta(seconds=2 * settings.SWEEP_INTERVAL)


def _suppress(incident: Incident, parent: Incident, *, now: datetime) -> None:
    incident.hold = Incident.Hold.SUPPRESSED
    incident.suppressed_by = parent
    incident.next_escalation_at = None
    record(incident, IncidentEvent.Kind.SUPPRESSED, now, **_parent_detail(parent))


def _suppress_dependents(parent: Incident, *, now: datetime) -> None:
    """A parent going down after its dependents did: their open, unacknowledged incidents stop
    escalating (the cause is known now); they are released when the parent resolves."""
    dependents = (
        Incident.objects.select_for_update()
        .select_related("owner")
        .filter(owner__in=parent.owner.dependents.all(), state=Incident.State.TRIGGERED)
        .exclude(hold=Incident.Hold.SUPPRESSED)
    )
    for incident in dependents:
        _suppress(incident, parent, now=now)
        save_state(incident)


def after_acknowledged(incident: Incident, *, now: datetime) -> None:
    """Stop escalation and reminders; with an ack timeout, look again when it runs out."""
    policy = frozen_policy(incident)
    state = EscalationState.load(incident)
    incident.next_escalation_at = next_wakeup(policy, state.position, incident.acknowledged_at)
    incident.save(update_fields=["next_escalation_at"])


def after_resolved(incident: Incident, *, now: datetime) -> None:
    """Nothing more is due; release incidents held by this one. (Whoever was told hears
    "resolved" from the notifications app, which subscribes to the incident's resolution.)"""
    incident.next_escalation_at = None
    incident.hold = ""
    incident.save(update_fields=["next_escalation_at", "hold"])
    _release_held_by([incident.id], now=now)


def after_severity_raised(incident: Incident, *, now: datetime) -> None:
    """A policy limited to severities the incident did not have: now that it has one, escalation
    starts. (Steps already passed that were limited to the new severity do not fire late.)"""
    policy = frozen_policy(incident)
    state = EscalationState.load(incident)
    if not policy.severities or not policy.applies_to(incident.severity):
        return
    if state.notified or not state.position.finished:
        return
    state.position = replace(start(policy, now), epoch=state.position.epoch)
    incident.escalation_position = state.dump()
    if incident.state == Incident.State.TRIGGERED and not incident.hold:
        reconsider(incident, now=now)
    save_state(incident)


# --- the beat-driven sweep -----------------------------------------------------------------------


MAX_BATCHES_PER_SWEEP = 100


@dataclass
class EscalationSweepResult:
    processed: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"escalated {self.processed}" + (f", {self.failed} failed" if self.failed else "")


def escalate_due_incidents(*, now: datetime, batch_size: int = 200) -> EscalationSweepResult:
    """Carry out everything due by `now`: steps, repeats, reminders, acknowledgment timeouts,
    releases and silences ending. Batches of incidents are claimed with FOR UPDATE SKIP LOCKED
    (served by the incident_escalation_due partial index), so concurrent sweeps share the work
    instead of doing it twice; within a batch each incident gets a savepoint, so one bad row is
    pushed back and logged rather than blocking the rest. Safe to run at any time, any number
    of times."""
    result = EscalationSweepResult()
    # Every processed incident's next_escalation_at moves past `now` (or to NULL), so the loop
    # ends when a batch comes back short; the bound only guards against a bug looping forever.
    for _ in range(MAX_BATCHES_PER_SWEEP):
        with transaction.atomic():
            batch = list(
                Incident.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("owner")
                .filter(next_escalation_at__lte=now)
                .order_by("next_escalation_at", "id")[:batch_size]
            )
            for incident in batch:
                try:
                    with transaction.atomic():
                        if incident.state == Incident.State.RESOLVED:
                            incident.next_escalation_at = None
                        else:
                            reconsider(incident, now=now)
                        save_state(incident)
                    result.processed += 1
                except Exception:
                    logger.exception("escalation of incident %s failed", incident.id)
                    result.failed += 1
                    Incident.objects.filter(id=incident.id).update(
                        next_escalation_at=now + timedelta(minutes=5)
                    )
        if len(batch) < batch_size:
            break
    return result
