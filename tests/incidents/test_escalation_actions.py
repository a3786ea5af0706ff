"""The links every notification carries (apps/notifications/links.py) and the actions added for
escalation: silence this check for 1 h / 4 h / 24 h, "not me — escalate now", and tokens sent
to a chat channel instead of a person. Tampered, expired and replayed tokens change nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.urls import resolve
from django.utils import timezone

from apps.escalation.models import Silence
from apps.incidents.models import Incident, IncidentEvent, UsedActionToken
from apps.incidents.tokens import ACTIONS, SALT, InvalidToken, make_action_token, read_action_token
from apps.notifications.links import incident_links
from apps.notifications.models import Notification
from tests.escalation.helpers import make_channel, make_policy, open_for

ALL_LINKS = {"check", "incident", *ACTIONS}


@pytest.fixture
def chat(team):
    return make_channel(team)


@pytest.fixture
def incident(team, owner, member, chat, check):
    """Opened now (the action view uses the database clock) under a two-step policy."""
    make_policy(team, [(10, [("user", owner.id)]), (10, [("channel", chat.id)])], is_default=True)
    return open_for(check, timezone.now())


def snapshot(incident) -> tuple:
    """Everything an action could change."""
    incident.refresh_from_db()
    return (
        incident.state,
        incident.acknowledged_by_id,
        incident.resolved_by_id,
        incident.hold,
        incident.next_escalation_at,
        incident.escalation_position,
        Silence.objects.count(),
        Notification.objects.count(),
        IncidentEvent.objects.count(),
        UsedActionToken.objects.count(),
    )


def path_of(link: str) -> str:
    return link.removeprefix("https://tocsin.example")


# --- links ------------------------------------------------------------------------------------


def test_member_gets_every_link_absolute_and_each_token_for_them(incident, member):
    links = incident_links(incident, user_id=member.id)
    assert set(links) == ALL_LINKS
    assert links["check"] == f"https://tocsin.example/checks/{incident.owner_id}/"
    assert links["incident"] == f"https://tocsin.example/incidents/{incident.id}/"
    for action in ACTIONS:
        match = resolve(path_of(links[action]))
        claim = read_action_token(match.kwargs["token"])
        assert (claim.incident_id, claim.action, claim.user_id, claim.channel_id) == (
            incident.id,
            action,
            member.id,
            None,
        )


def test_viewer_and_outsider_get_no_action_links(incident, viewer, outsider):
    assert set(incident_links(incident, user_id=viewer.id)) == {"check", "incident"}
    assert set(incident_links(incident, user_id=outsider.id)) == {"check", "incident"}
    assert set(incident_links(incident)) == {"check", "incident"}


def test_channel_of_the_team_gets_channel_tokens(incident, chat):
    links = incident_links(incident, channel_id=chat.id)
    assert set(links) == ALL_LINKS
    claim = read_action_token(resolve(path_of(links["acknowledge"])).kwargs["token"])
    assert (claim.user_id, claim.channel_id) == (None, chat.id)


def test_disabled_or_foreign_channel_gets_no_action_links(incident, chat, other_team):
    foreign = make_channel(other_team, name="theirs")
    assert set(incident_links(incident, channel_id=foreign.id)) == {"check", "incident"}
    chat.is_enabled = False
    chat.save()
    assert set(incident_links(incident, channel_id=chat.id)) == {"check", "incident"}


def test_links_for_a_user_and_a_channel_at_once_are_refused(incident, member, chat):
    with pytest.raises(ValueError, match="one user or one channel"):
        incident_links(incident, user_id=member.id, channel_id=chat.id)


@pytest.mark.parametrize(
    "payload",
    [
        {"i": 1, "a": "escalate", "n": "x"},
        {"i": 1, "a": "escalate", "u": 1, "c": 2, "n": "x"},
        {"i": 1, "a": "silence_1h", "c": True, "n": "x"},
        {"i": 1, "a": "silence_1h", "c": [2], "n": "x"},
        {"i": 1, "a": "silence_2h", "u": 1, "n": "x"},
    ],
    ids=["nobody", "user-and-channel", "channel-bool", "channel-list", "unknown-silence"],
)
def test_genuinely_signed_but_malformed_recipient_is_refused(payload):
    token = signing.dumps(payload, salt=SALT, compress=False)
    with pytest.raises(InvalidToken, match="not valid"):
        read_action_token(token)


def test_a_token_names_exactly_one_recipient():
    with pytest.raises(ValueError):
        make_action_token(incident_id=1, action="resolve")
    with pytest.raises(ValueError):
        make_action_token(incident_id=1, action="resolve", user_id=1, channel_id=2)


# --- silence from a link ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "hours"), [("silence_1h", 1), ("silence_4h", 4), ("silence_24h", 24)]
)
def test_silence_link_silences_this_check_alone(client, incident, member, action, hours):
    token = incident_links(incident, user_id=member.id)[action]
    page = client.get(path_of(token))
    assert page.status_code == 200
    assert f"Silence this check for {hours} hour" in page.content.decode()
    assert Silence.objects.count() == 0  # GET changes nothing
    response = client.post(path_of(token))
    assert response.status_code == 200
    silence = Silence.objects.get()
    assert silence.matchers == {"check_ids": [str(incident.owner_id)]}
    assert silence.ends_at - silence.starts_at == timedelta(hours=hours)
    assert silence.created_by == member and "from an alert" in silence.comment
    incident.refresh_from_db()
    assert incident.hold == Incident.Hold.SILENCED and incident.silenced_by == silence
    assert incident.state == Incident.State.TRIGGERED  # recorded and visible, not acknowledged
    assert "silenced" in response.content.decode()


def test_silenced_incident_escalates_no_further_until_the_silence_ends(
    client, incident, member, chat
):
    from apps.escalation.engine import escalate_due_incidents

    client.post(path_of(incident_links(incident, user_id=member.id)["silence_1h"]))
    now = timezone.now()
    escalate_due_incidents(now=now + timedelta(minutes=30))
    assert not Notification.objects.filter(target=f"channel:{chat.id}").exists()
    escalate_due_incidents(now=now + timedelta(minutes=61))
    assert Notification.objects.filter(target=f"channel:{chat.id}", event="escalation").exists()


# --- not me -----------------------------------------------------------------------------------


def test_not_me_link_notifies_the_next_step_now(client, incident, owner, chat):
    token = path_of(incident_links(incident, user_id=owner.id)["escalate"])
    assert "Escalate this incident now?" in client.get(token).content.decode()
    response = client.post(token)
    assert response.status_code == 200
    assert "next step of the escalation policy has been notified" in response.content.decode()
    assert Notification.objects.filter(target=f"channel:{chat.id}", event="escalation").exists()
    event = IncidentEvent.objects.get(incident=incident, kind="escalate_now")
    assert event.detail["by"] == "alice"


def test_not_me_without_a_further_step_is_refused_and_spends_nothing(
    client, incident, owner, member
):
    from apps.escalation.engine import escalate_due_incidents

    escalate_due_incidents(now=timezone.now() + timedelta(minutes=10))
    token = path_of(incident_links(incident, user_id=owner.id)["escalate"])
    before = snapshot(incident)
    response = client.post(token)
    assert response.status_code == 409
    assert "no further step" in response.content.decode()
    assert snapshot(incident) == before


# --- channel tokens ---------------------------------------------------------------------------


def test_channel_token_acknowledges_and_the_timeline_names_the_channel(client, incident, chat):
    token = path_of(incident_links(incident, channel_id=chat.id)["acknowledge"])
    assert "posted to the channel ops-chat" in client.get(token).content.decode()
    assert client.post(token).status_code == 200
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED and incident.acknowledged_by is None
    event = IncidentEvent.objects.get(incident=incident, kind="acknowledged")
    assert event.detail == {"by": None, "via_channel": "ops-chat"}
    incident.refresh_from_db()
    assert incident.next_escalation_at is None


def test_channel_token_silences_with_the_channel_in_the_comment(client, incident, chat):
    client.post(path_of(incident_links(incident, channel_id=chat.id)["silence_4h"]))
    silence = Silence.objects.get()
    assert silence.created_by is None and "in channel ops-chat" in silence.comment


def test_channel_token_stops_working_when_the_channel_is_disabled(client, incident, chat):
    token = path_of(incident_links(incident, channel_id=chat.id)["resolve"])
    chat.is_enabled = False
    chat.save()
    before = snapshot(incident)
    response = client.post(token)
    assert response.status_code == 403
    assert snapshot(incident) == before


def test_token_of_another_teams_channel_cannot_act(client, incident, other_team):
    foreign = make_channel(other_team, name="theirs")
    token = make_action_token(incident_id=incident.id, action="resolve", channel_id=foreign.id)
    before = snapshot(incident)
    assert client.post(f"/a/{token}/").status_code == 403
    assert snapshot(incident) == before


def test_token_of_a_deleted_channel_cannot_act(client, incident, chat):
    token = path_of(incident_links(incident, channel_id=chat.id)["acknowledge"])
    chat.delete()
    before = snapshot(incident)
    assert client.post(token).status_code == 403
    assert snapshot(incident) == before


# --- tampered, expired, replayed: every action ------------------------------------------------


@pytest.fixture(params=["user", "channel"])
def recipient(request, member, chat):
    return {"user_id": member.id} if request.param == "user" else {"channel_id": chat.id}


@pytest.mark.parametrize("action", ACTIONS)
def test_tampered_token_changes_nothing(client, incident, recipient, action):
    token = make_action_token(incident_id=incident.id, action=action, **recipient)
    rest = token.partition(":")[2]
    other = make_action_token(incident_id=incident.id + 1, action=action, **recipient)
    forged = other.partition(":")[0] + ":" + rest  # another incident's payload, this signature
    before = snapshot(incident)
    for bad in (forged, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")):
        response = client.post(f"/a/{bad}/")
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    assert snapshot(incident) == before


@pytest.mark.parametrize("action", ACTIONS)
def test_expired_token_changes_nothing(client, incident, recipient, action, settings):
    settings.ACTION_TOKEN_MAX_AGE = timedelta(days=7)
    with time_machine.travel(timezone.now() - timedelta(days=8), tick=False):
        token = make_action_token(incident_id=incident.id, action=action, **recipient)
    before = snapshot(incident)
    response = client.post(f"/a/{token}/")
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert snapshot(incident) == before


@pytest.mark.parametrize("action", ["silence_1h", "silence_4h", "silence_24h", "escalate"])
def test_replayed_token_changes_nothing_the_second_time(client, incident, recipient, action):
    token = make_action_token(incident_id=incident.id, action=action, **recipient)
    assert client.post(f"/a/{token}/").status_code == 200
    after_first = snapshot(incident)
    response = client.post(f"/a/{token}/")
    assert response.status_code == 409
    assert "already been used" in response.content.decode()
    assert snapshot(incident) == after_first


@pytest.mark.parametrize("action", ["silence_1h", "escalate"])
def test_actions_on_a_resolved_incident_are_refused(client, incident, member, owner, action):
    from apps.incidents.services import resolve_incident

    token = make_action_token(incident_id=incident.id, action=action, user_id=member.id)
    resolve_incident(incident_id=incident.id, user=owner, now=timezone.now())
    before = snapshot(incident)
    response = client.post(f"/a/{token}/")
    assert response.status_code == 409
    assert snapshot(incident) == before


def test_viewer_token_for_a_new_action_is_refused(client, incident, viewer):
    token = make_action_token(incident_id=incident.id, action="silence_24h", user_id=viewer.id)
    before = snapshot(incident)
    assert client.post(f"/a/{token}/").status_code == 403
    assert snapshot(incident) == before
