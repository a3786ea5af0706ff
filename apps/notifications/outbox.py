"""The implicit policy (no escalation policy assigned): every team member is told by email,
once, at step 0. Kept for the incident services until they route through escalation."""

from datetime import datetime

from apps.incidents.models import Incident
from apps.teams.models import Membership

from .dispatch import Recipient, notify, notify_resolved
from .models import Notification


def team_member_recipients(team_id: int) -> list[Recipient]:
    """Every member of the team, viewers included (they are told, without action links)."""
    user_ids = Membership.objects.filter(team_id=team_id).values_list("user_id", flat=True)
    return [Recipient(user_id=user_id) for user_id in sorted(user_ids)]


def queue_incident_notifications(*, incident: Incident, event: str, now: datetime) -> int:
    """DOWN to every team member, or RESOLVED to everyone who was told. Must run inside the
    transaction that changed the incident. A repeat writes nothing new."""
    if event == Notification.Event.RESOLVED:
        return notify_resolved(incident=incident, now=now)
    return notify(
        incident=incident,
        event=event,
        recipients=team_member_recipients(incident.owner.team_id),
        round=0,
        step=0,
        now=now,
    )
