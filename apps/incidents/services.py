"""Opening, acknowledging and resolving incidents. Every write that changes an incident is
announced through apps/incidents/signals.py in the same transaction; escalation (who hears what,
when) and notifications (the outbox) subscribe there, so their rows commit with the incident."""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from apps.bulk import insert_many, update_many
from apps.checks.models import Check, Ping
from apps.checks.rules import Rules, Severity
from apps.checks.state import Failure
from apps.teams.models import Membership

from .models import Incident, IncidentEvent
from .signals import (
    incident_acknowledged,
    incidents_opened,
    incidents_resolved,
    severities_raised,
)

RESOLVED_FIELDS = ["state", "resolved_at", "resolved_by", "resolution", "severity_raise_at"]


class IncidentActionError(Exception):
    """The action cannot be carried out (already resolved, ...); the message says why."""


def may_act_on_incidents(*, user_id: int, team_id: int) -> bool:
    """The dashboard's rule for acknowledging and resolving: a member or above of the team."""
    membership = Membership.objects.filter(user_id=user_id, team_id=team_id).first()
    return membership is not None and membership.has_role(Membership.Role.MEMBER)


def failure_details(check: Check, failure: Failure | None) -> dict:
    """The context an alert needs: what was expected, what happened, and the job's own words."""
    ping = None
    if failure is not None and failure.n:
        ping = Ping.objects.filter(owner=check, n=failure.n).first()
    return details_of(check, failure, ping)


def failure_pings(failures: list[tuple[Check, Failure | None]]) -> dict[tuple, Ping]:
    """The pings that reported the failures, by (check id, ping number), in one query."""
    wanted = Q()
    for check, failure in failures:
        if failure is not None and failure.n:
            wanted |= Q(owner_id=check.id, n=failure.n)
    if not wanted:
        return {}
    return {(ping.owner_id, ping.n): ping for ping in Ping.objects.filter(wanted)}


def details_of(check: Check, failure: Failure | None, ping: Ping | None) -> dict:
    """failure_details with the failure's ping (if any) already loaded."""
    details = {
        "environment": check.environment,
        "tags": check.tag_list,
        "last_ping_at": check.last_ping_at.isoformat() if check.last_ping_at else None,
        "expected_at": None,
        "exit_status": None,
        "body_tail": "",
        "run_id": None,
        "run_started_at": None,
        "run_duration_seconds": None,
        "failed_at": None,
    }
    if failure is None:
        return details
    details["failed_at"] = failure.at.isoformat()
    details["exit_status"] = failure.exit_status
    if failure.expected_at is not None:
        details["expected_at"] = failure.expected_at.isoformat()
    if failure.run_started_at is not None:
        details["run_started_at"] = failure.run_started_at.isoformat()
        details["run_duration_seconds"] = round(
            (failure.at - failure.run_started_at).total_seconds(), 3
        )
    if ping is not None:
        details["body_tail"] = ping.body_tail()
        details["run_id"] = str(ping.run_id) if ping.run_id else None
    return details


def _person(actor):
    """The user to store in acknowledged_by / resolved_by: None for an actor that is not a
    person (an API key acting for its team); the timeline still names it."""
    return actor if isinstance(actor, get_user_model()) else None


def record_event(incident: Incident, event: str, at: datetime, **detail) -> IncidentEvent:
    return IncidentEvent.objects.create(incident=incident, kind=event, at=at, detail=detail)


def open_incident(
    *,
    check: Check,
    kind: str,
    opened_at: datetime,
    details: dict,
    now: datetime,
    rules: Rules | None = None,
) -> Incident:
    """Open an incident for `check` and start its escalation (freeze the policy, fire step 0
    unless a parent check's incident or a silence holds it back). Must run inside the sweeper's
    transaction. If the check already has an open incident, that one is returned and nothing
    is sent again (one incident, one notification stream)."""
    existing = Incident.objects.filter(owner=check).exclude(state=Incident.State.RESOLVED).first()
    if existing is not None:
        return existing
    incident = new_incident(check, kind=kind, opened_at=opened_at, details=details, rules=rules)
    incident.save()
    record_event(
        incident, IncidentEvent.Kind.OPENED, opened_at, kind=kind, severity=incident.severity
    )
    incidents_opened.send(sender=Incident, incidents=[incident], now=now)
    return incident


def new_incident(check: Check, *, kind: str, opened_at, details: dict, rules=None) -> Incident:
    """An incident for `check`, not saved yet, with the severity its rules give it."""
    rules = rules or check.rules()
    raise_at = None
    if rules.severity_raise_after and rules.severity_raise_to.rank > rules.severity.rank:
        raise_at = opened_at + rules.severity_raise_after
    return Incident(
        owner=check,
        kind=kind,
        opened_at=opened_at,
        details=details,
        severity=rules.severity,
        severity_raise_at=raise_at,
    )


def open_incidents(incidents: list[Incident], *, now: datetime) -> list[Incident]:
    """open_incident for many checks at once (a sweep's batch), in bulk: `incidents` are new,
    unsaved (new_incident), for checks that have no open incident (the caller holds their
    rows). Inserts them and their "opened" events, then starts their escalation."""
    if not incidents:
        return []
    insert_many(Incident, incidents)
    insert_many(
        IncidentEvent,
        [
            IncidentEvent(
                incident=incident,
                kind=IncidentEvent.Kind.OPENED,
                at=incident.opened_at,
                detail={"kind": incident.kind, "severity": incident.severity},
            )
            for incident in incidents
        ],
    )
    incidents_opened.send(sender=Incident, incidents=incidents, now=now)
    return incidents


def resolve_incidents(resolved: list[tuple[Incident, datetime, str]], *, now: datetime) -> None:
    """Resolve many open incidents at once (a sweep's recoveries and pauses), in bulk:
    (incident, resolved_at, resolution) each, incidents locked by the caller."""
    if not resolved:
        return
    incidents = []
    for incident, resolved_at, resolution in resolved:
        incident.state = Incident.State.RESOLVED
        incident.resolved_at = resolved_at
        incident.resolved_by = None
        incident.resolution = resolution
        incident.severity_raise_at = None
        incidents.append(incident)
    update_many(Incident, incidents, RESOLVED_FIELDS)
    insert_many(
        IncidentEvent,
        [
            IncidentEvent(
                incident=incident,
                kind=IncidentEvent.Kind.RESOLVED,
                at=incident.resolved_at,
                detail={"resolution": incident.resolution, "by": None},
            )
            for incident in incidents
        ],
    )
    incidents_resolved.send(sender=Incident, incidents=incidents, now=now)


def open_incidents_of(check_ids) -> dict:
    """Check id -> its open incident, locked (FOR UPDATE), in one query."""
    rows = (
        Incident.objects.select_for_update(of=("self",))
        .filter(owner_id__in=check_ids)
        .exclude(state=Incident.State.RESOLVED)
    )
    return {incident.owner_id: incident for incident in rows}


def open_incident_for(check: Check) -> Incident | None:
    return (
        Incident.objects.select_for_update()
        .filter(owner=check)
        .exclude(state=Incident.State.RESOLVED)
        .first()
    )


def change_incident_kind(*, check: Check, kind: str, at: datetime) -> Incident | None:
    """Relabel the open incident (e.g. to flapping) without notifying again."""
    incident = open_incident_for(check)
    if incident is None or incident.kind == kind:
        return incident
    record_event(incident, IncidentEvent.Kind.KIND_CHANGED, at, old=incident.kind, new=kind)
    incident.kind = kind
    incident.save(update_fields=["kind"])
    return incident


def resolve_open_incident(
    *, check: Check, resolved_at: datetime, now: datetime, resolution: str, user=None
) -> Incident | None:
    incident = open_incident_for(check)
    if incident is None:
        return None
    return _resolve(incident, resolved_at=resolved_at, now=now, resolution=resolution, user=user)


def _resolve(
    incident: Incident,
    *,
    resolved_at: datetime,
    now: datetime,
    resolution: str,
    user,
    via_channel: str | None = None,
) -> Incident:
    incident.state = Incident.State.RESOLVED
    incident.resolved_at = resolved_at
    incident.resolved_by = _person(user)
    incident.resolution = resolution
    incident.severity_raise_at = None
    incident.save(update_fields=RESOLVED_FIELDS)
    record_event(
        incident,
        IncidentEvent.Kind.RESOLVED,
        resolved_at,
        resolution=resolution,
        by=user.get_username() if user else None,
        **({"via_channel": via_channel} if via_channel else {}),
    )
    incidents_resolved.send(sender=Incident, incidents=[incident], now=now)
    return incident


def raise_due_severities(*, now: datetime, batch_size: int = 500) -> int:
    """Apply severity rules (e.g. warning -> critical after 1 hour open) that fell due by `now`.
    Each change is recorded on the incident's timeline. Safe to run concurrently."""
    raised, reached = 0, []
    due_now = Incident.objects.filter(severity_raise_at__lte=now).exclude(
        state=Incident.State.RESOLVED
    )
    if not due_now.exists():
        # Every sweep asks, and almost always nothing is due: one indexed read, without the
        # transaction and row locks that raising needs.
        return 0
    with transaction.atomic():
        due = due_now.select_for_update(skip_locked=True).select_related("owner")[:batch_size]
        for incident in due:
            new = incident.owner.severity_raise_to
            old = incident.severity
            incident.severity_raise_at = None
            if Severity(new).rank > Severity(old).rank:
                incident.severity = new
                record_event(incident, IncidentEvent.Kind.SEVERITY_RAISED, now, old=old, new=new)
                raised += 1
            incident.save(update_fields=["severity", "severity_raise_at"])
            if incident.severity == new:
                reached.append(incident)
        if reached:
            severities_raised.send(sender=Incident, incidents=reached, now=now)
    return raised


@transaction.atomic
def acknowledge_incident(
    *, incident_id: int, user, now: datetime, via_channel: str | None = None
) -> Incident:
    """Stop escalation and reminders (until the policy's acknowledgment timeout, if any).
    `user` is None for a chat channel's link; `via_channel` then names the channel."""
    incident = Incident.objects.select_for_update().select_related("owner").get(id=incident_id)
    if incident.state == Incident.State.RESOLVED:
        raise IncidentActionError("This incident is already resolved.")
    if incident.state == Incident.State.ACKNOWLEDGED:
        raise IncidentActionError("This incident is already acknowledged.")
    incident.state = Incident.State.ACKNOWLEDGED
    incident.acknowledged_at = now
    incident.acknowledged_by = _person(user)
    incident.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
    record_event(
        incident,
        IncidentEvent.Kind.ACKNOWLEDGED,
        now,
        by=user.get_username() if user else None,
        **({"via_channel": via_channel} if via_channel else {}),
    )
    incident_acknowledged.send(sender=Incident, incident=incident, by_user=user, now=now)
    return incident


MAX_NOTE_LENGTH = 2000


class NoteError(ValueError):
    """The note cannot be added; the message says why."""


def add_incident_note(*, incident_id: int, user, text: str, now: datetime) -> IncidentEvent:
    """Add `user`'s note to the incident's timeline, at `now`. The text is kept as written
    (stripped) and escaped where it is shown. Raises NoteError for an empty note or one
    longer than MAX_NOTE_LENGTH. Open or resolved, an incident takes notes (a post-mortem
    line after the fact is a note too). A repeat adds a second note."""
    text = (text or "").strip()
    if not text:
        raise NoteError("Write something: the note is empty.")
    if len(text) > MAX_NOTE_LENGTH:
        raise NoteError(
            f"A note is at most {MAX_NOTE_LENGTH} characters; this one has {len(text)}."
        )
    if "\x00" in text:
        raise NoteError("The note contains a NUL character.")
    incident = Incident.objects.get(id=incident_id)
    return record_event(
        incident, IncidentEvent.Kind.NOTE, now, text=text, by=user.get_username(), by_id=user.id
    )


@transaction.atomic
def resolve_incident(
    *, incident_id: int, user, now: datetime, via_channel: str | None = None
) -> Incident:
    incident = Incident.objects.select_for_update().select_related("owner").get(id=incident_id)
    if incident.state == Incident.State.RESOLVED:
        raise IncidentActionError("This incident is already resolved.")
    return _resolve(
        incident,
        resolved_at=now,
        now=now,
        resolution=Incident.Resolution.MANUAL,
        user=user,
        via_channel=via_channel,
    )
