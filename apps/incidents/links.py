"""The links every notification carries: to the check and incident pages, and the one-click
actions, each a signed, expiring, single-use token for one recipient (apps/incidents/tokens.py).

Notification code (apps/notifications) calls `incident_links` for each recipient; it never
builds action URLs itself, so the rule of who may act lives in one place.
"""

from django.conf import settings
from django.urls import reverse

from .models import Incident
from .tokens import ACTIONS, make_action_token


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def incident_links(
    incident: Incident, *, user_id: int | None = None, channel_id: int | None = None
) -> dict[str, str]:
    """{"check", "incident"} always; plus one URL per action ("acknowledge", "resolve",
    "silence_1h", "silence_4h", "silence_24h", "escalate") when the recipient may act: a team
    member or above (a viewer is told, but gets no links), or one of the team's channels.
    Give at most one of user_id and channel_id. Every call signs fresh tokens."""
    from .services import channel_may_act, may_act_on_incidents

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
            links[action] = absolute_url(reverse("incidents:action", args=[token]))
    return links
