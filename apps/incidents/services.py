"""Opening, acknowledging and resolving incidents. Every write that changes an incident also
writes its outbox rows in the same transaction."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from apps.checks.models import Check, Ping
from apps.notifications.models import Notification
from apps.notifications.outbox import queue_incident_notifications
from apps.teams.models import Membership

from .models import Incident, UsedActionToken
from .tokens import ActionClaim, InvalidToken, read_action_token


class IncidentActionError(Exception):
    """The action cannot be carried out (already resolved, ...); the message says why."""


class ActionNotAllowed(InvalidToken):
    """The token is genuine, but the person it was sent to may not act on this incident (any
    more): a viewer, or someone who left the team after the email went out."""


def may_act_on_incidents(*, user_id: int, team_id: int) -> bool:
    """The dashboard's rule for acknowledging and resolving: a member or above of the team."""
    membership = Membership.objects.filter(user_id=user_id, team_id=team_id).first()
    return membership is not None and membership.has_role(Membership.Role.MEMBER)


def failure_details(check: Check, *, expected_at: datetime | None) -> dict:
    """The context an alert needs: what was expected and what happened."""
    details = {
        "expected_at": expected_at.isoformat() if expected_at else None,
        "last_ping_at": check.last_ping_at.isoformat() if check.last_ping_at else None,
        "environment": check.environment,
        "tags": check.tag_list,
    }
    last_fail = (
        Ping.objects.filter(owner=check, kind=Ping.Kind.FAIL).order_by("-n").first()
        if check.last_signal == Ping.Kind.FAIL
        else None
    )
    if last_fail is not None:
        details.update(
            exit_status=last_fail.exit_status,
            body_tail=last_fail.body_tail(),
            run_id=str(last_fail.run_id) if last_fail.run_id else None,
            failed_at=last_fail.received_at.isoformat(),
        )
    return details


def open_incident(
    *, check: Check, kind: str, opened_at: datetime, details: dict, now: datetime
) -> Incident:
    """Open an incident for `check` and queue the DOWN notifications. Must run inside the
    sweeper's transaction. If the check already has an open incident, that one is returned and
    nothing is sent again (one incident, one notification stream)."""
    existing = Incident.objects.filter(owner=check).exclude(state=Incident.State.RESOLVED).first()
    if existing is not None:
        return existing
    incident = Incident.objects.create(owner=check, kind=kind, opened_at=opened_at, details=details)
    queue_incident_notifications(incident=incident, event=Notification.Event.DOWN, now=now)
    return incident


def resolve_open_incident(
    *, check: Check, resolved_at: datetime, now: datetime, resolution: str, user=None
) -> Incident | None:
    incident = (
        Incident.objects.select_for_update()
        .filter(owner=check)
        .exclude(state=Incident.State.RESOLVED)
        .first()
    )
    if incident is None:
        return None
    return _resolve(incident, resolved_at=resolved_at, now=now, resolution=resolution, user=user)


def _resolve(
    incident: Incident, *, resolved_at: datetime, now: datetime, resolution: str, user
) -> Incident:
    incident.state = Incident.State.RESOLVED
    incident.resolved_at = resolved_at
    incident.resolved_by = user
    incident.resolution = resolution
    incident.save(update_fields=["state", "resolved_at", "resolved_by", "resolution"])
    queue_incident_notifications(incident=incident, event=Notification.Event.RESOLVED, now=now)
    return incident


@transaction.atomic
def acknowledge_incident(*, incident_id: int, user, now: datetime) -> Incident:
    incident = Incident.objects.select_for_update().select_related("owner").get(id=incident_id)
    if incident.state == Incident.State.RESOLVED:
        raise IncidentActionError("This incident is already resolved.")
    if incident.state == Incident.State.ACKNOWLEDGED:
        raise IncidentActionError("This incident is already acknowledged.")
    incident.state = Incident.State.ACKNOWLEDGED
    incident.acknowledged_at = now
    incident.acknowledged_by = user
    incident.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
    return incident


@transaction.atomic
def resolve_incident(*, incident_id: int, user, now: datetime) -> Incident:
    incident = Incident.objects.select_for_update().select_related("owner").get(id=incident_id)
    if incident.state == Incident.State.RESOLVED:
        raise IncidentActionError("This incident is already resolved.")
    return _resolve(
        incident, resolved_at=now, now=now, resolution=Incident.Resolution.MANUAL, user=user
    )


@dataclass(frozen=True)
class TokenAction:
    claim: ActionClaim
    incident: Incident
    user: object


def inspect_action_token(token: str) -> TokenAction:
    """Validate a token for the confirmation page without using it. Raises InvalidToken or
    IncidentActionError with a message for the page."""
    claim = read_action_token(token)
    if UsedActionToken.objects.filter(nonce=claim.nonce).exists():
        raise IncidentActionError("This link has already been used.")
    incident = Incident.objects.select_related("owner").filter(id=claim.incident_id).first()
    user = get_user_model().objects.filter(id=claim.user_id, is_active=True).first()
    if incident is None or user is None:
        raise InvalidToken("This link no longer points to anything.")
    if not may_act_on_incidents(user_id=user.id, team_id=incident.owner.team_id):
        raise ActionNotAllowed("You can no longer act on this team's incidents.")
    if incident.state == Incident.State.RESOLVED:
        raise IncidentActionError("This incident is already resolved.")
    return TokenAction(claim=claim, incident=incident, user=user)


def perform_action_token(token: str, *, now: datetime) -> Incident:
    """Carry out the action a token names, once. The nonce is recorded in the same transaction
    as the action, so a replay (or a double click racing itself) changes nothing."""
    with transaction.atomic():
        action = inspect_action_token(token)
        try:
            with transaction.atomic():
                UsedActionToken.objects.create(nonce=action.claim.nonce)
        except IntegrityError:
            raise IncidentActionError("This link has already been used.") from None
        if action.claim.action == "acknowledge":
            return acknowledge_incident(incident_id=action.incident.id, user=action.user, now=now)
        return resolve_incident(incident_id=action.incident.id, user=action.user, now=now)
