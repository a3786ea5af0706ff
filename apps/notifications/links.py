"""The links every notification carries, and what clicking one does.

Each message links to the check and incident pages and, when its recipient may act, to
one-click actions (acknowledge, resolve, silence, "not me — escalate"): each a signed,
expiring, single-use token for one recipient (apps/incidents/tokens.py). Message code calls
`incident_links` for each recipient and never builds action URLs itself, so the rule of who may
act lives here. Spending a token calls the same services as the dashboard's buttons: the
incident's (acknowledge, resolve) and escalation's (silence, escalate now).
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.urls import reverse

from apps.escalation import actions
from apps.incidents.models import Incident, UsedActionToken
from apps.incidents.services import (
    IncidentActionError,
    acknowledge_incident,
    may_act_on_incidents,
    resolve_incident,
)
from apps.incidents.tokens import (
    ACTIONS,
    SILENCE_ACTIONS,
    ActionClaim,
    InvalidToken,
    make_action_token,
    read_action_token,
)

from .models import Channel


class ActionNotAllowed(InvalidToken):
    """The token is genuine, but the person it was sent to may not act on this incident (any
    more): a viewer, or someone who left the team after the email went out."""


def channel_may_act(*, channel_id: int, team_id: int) -> bool:
    """Links in a chat message: anyone in the channel may click them, as long as the channel
    still belongs to the incident's team and is enabled."""
    return Channel.objects.filter(id=channel_id, team_id=team_id, is_enabled=True).exists()


def channel_name(channel_id: int | None) -> str | None:
    if channel_id is None:
        return None
    channel = Channel.objects.filter(id=channel_id).first()
    return channel.name if channel else f"#{channel_id}"


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def incident_links(
    incident: Incident, *, user_id: int | None = None, channel_id: int | None = None
) -> dict[str, str]:
    """{"check", "incident"} always; plus one URL per action ("acknowledge", "resolve",
    "silence_1h", "silence_4h", "silence_24h", "escalate") when the recipient may act: a team
    member or above (a viewer is told, but gets no links), or one of the team's channels.
    Give at most one of user_id and channel_id. Every call signs fresh tokens."""
    if user_id is not None and channel_id is not None:
        raise ValueError("links are for one user or one channel, not both")
    links = {
        "check": absolute_url(reverse("dashboard:check-detail", args=[incident.owner_id])),
        "incident": absolute_url(reverse("dashboard:incident-detail", args=[incident.id])),
    }
    team_id = incident.owner.team_id
    if user_id is not None:
        allowed = may_act_on_incidents(user_id=user_id, team_id=team_id)
    elif channel_id is not None:
        allowed = channel_may_act(channel_id=channel_id, team_id=team_id)
    else:
        allowed = False
    if allowed:
        for action in ACTIONS:
            token = make_action_token(
                incident_id=incident.id, action=action, user_id=user_id, channel_id=channel_id
            )
            links[action] = absolute_url(reverse("notifications:action", args=[token]))
    return links


@dataclass(frozen=True)
class TokenAction:
    claim: ActionClaim
    incident: Incident
    user: object  # None for a channel's token
    via_channel: str | None = None  # the channel's name, for the timeline


def inspect_action_token(token: str) -> TokenAction:
    """Validate a token for the confirmation page without using it. Raises InvalidToken or
    IncidentActionError with a message for the page."""
    claim = read_action_token(token)
    if UsedActionToken.objects.filter(nonce=claim.nonce).exists():
        raise IncidentActionError("This link has already been used.")
    incident = Incident.objects.select_related("owner").filter(id=claim.incident_id).first()
    if incident is None:
        raise InvalidToken("This link no longer points to anything.")
    team_id = incident.owner.team_id
    if claim.channel_id is not None:
        if not channel_may_act(channel_id=claim.channel_id, team_id=team_id):
            raise ActionNotAllowed("This channel can no longer act on this team's incidents.")
        action = TokenAction(
            claim=claim, incident=incident, user=None, via_channel=channel_name(claim.channel_id)
        )
    else:
        user = get_user_model().objects.filter(id=claim.user_id, is_active=True).first()
        if user is None:
            raise InvalidToken("This link no longer points to anything.")
        if not may_act_on_incidents(user_id=user.id, team_id=team_id):
            raise ActionNotAllowed("You can no longer act on this team's incidents.")
        action = TokenAction(claim=claim, incident=incident, user=user)
    if incident.state == Incident.State.RESOLVED:
        raise IncidentActionError("This incident is already resolved.")
    return action


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
        return _carry_out(action, now=now)


def _carry_out(action: TokenAction, *, now: datetime) -> Incident:
    incident_id, user, via = action.incident.id, action.user, action.via_channel
    name = action.claim.action
    if name == "acknowledge":
        return acknowledge_incident(incident_id=incident_id, user=user, now=now, via_channel=via)
    if name == "resolve":
        return resolve_incident(incident_id=incident_id, user=user, now=now, via_channel=via)
    try:
        if name == "escalate":
            return actions.escalate_incident_now(
                incident_id=incident_id, user=user, now=now, via_channel=via
            )
        return actions.silence_incident_check(
            incident_id=incident_id,
            duration=SILENCE_ACTIONS[name],
            user=user,
            now=now,
            via_channel=via,
        )
    except actions.EscalationActionError as exc:
        raise IncidentActionError(str(exc)) from None
