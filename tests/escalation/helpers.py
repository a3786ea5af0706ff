"""Building blocks for escalation tests: policies from a compact description, incidents opened
the way the sweeper opens them, and what was owed to whom (the outbox rows)."""

from datetime import timedelta

from django.db import transaction

from apps.escalation.models import EscalationPolicy, EscalationStep
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import open_incident
from apps.notifications.models import Channel, Notification


def make_policy(team, steps, *, name="Primary", **fields) -> EscalationPolicy:
    """steps: [(wait_minutes, [("user", id), ("channel", id), ...], "severities"), ...]."""
    policy = EscalationPolicy.objects.create(team=team, name=name, **fields)
    for order, step in enumerate(steps):
        wait, targets, *rest = step
        EscalationStep.objects.create(
            policy=policy,
            order=order,
            wait=timedelta(minutes=wait),
            targets=[{"kind": kind, "id": id_} for kind, id_ in targets],
            severities=rest[0] if rest else "",
        )
    return policy


def make_channel(team, name="ops-chat") -> Channel:
    return Channel.objects.create(
        team=team, name=name, kind=Channel.Kind.WEBHOOK, config={"url": "http://127.0.0.1:9/"}
    )


def open_for(check, at, kind=Incident.Kind.MISSED_HEARTBEAT) -> Incident:
    """Open an incident as the sweeper does (inside a transaction, `now` = `at`)."""
    with transaction.atomic():
        return open_incident(check=check, kind=kind, opened_at=at, details={}, now=at)


def owed(incident, *, event=None) -> list[tuple]:
    """(event, round, step, target) of every notification owed about the incident, in order."""
    rows = Notification.objects.filter(incident=incident)
    if event:
        rows = rows.filter(event=event)
    return sorted(rows.values_list("event", "round", "step", "target"))


def timeline(incident) -> list[str]:
    return list(
        IncidentEvent.objects.filter(incident=incident)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )


def events_of(incident, kind) -> list[dict]:
    return [
        e.detail | {"at": e.at}
        for e in IncidentEvent.objects.filter(incident=incident, kind=kind).order_by("at", "id")
    ]
