"""The one-click action page (/a/<token>/): GET shows a confirmation and changes nothing, POST
acts once without a login. Every refusal is a page with a 4xx that says why and changes
nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse

from apps.incidents.models import Incident, UsedActionToken
from apps.incidents.services import acknowledge_incident, resolve_incident
from apps.incidents.tokens import SALT, make_action_token
from apps.notifications.link_views import MAX_TOKEN_LENGTH
from apps.notifications.models import Notification
from apps.teams.models import Membership
from tests.escalation.helpers import open_for


@pytest.fixture
def incident(check, t0):
    return Incident.objects.create(
        owner=check, kind=Incident.Kind.MISSED_HEARTBEAT, opened_at=t0, details={}
    )


def token_for(incident, user, action="acknowledge"):
    return make_action_token(incident_id=incident.id, action=action, user_id=user.id)


def action_url(token: str) -> str:
    return f"/a/{token}/"


def state_of(incident) -> tuple:
    """Everything an action could change."""
    incident.refresh_from_db()
    return (
        incident.state,
        incident.acknowledged_at,
        incident.acknowledged_by_id,
        incident.resolved_at,
        incident.resolved_by_id,
        incident.resolution,
        UsedActionToken.objects.count(),
        Notification.objects.count(),
    )


def assert_refused(response, status: int, message: str):
    assert response.status_code == status
    body = response.content.decode()
    assert "This link cannot be used" in body
    assert message in body
    assert "Nothing was changed." in body
    assert "<form" not in body.split("</header>")[-1]  # no button to press on a refusal


def flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def test_url_is_namespaced(incident, member):
    token = token_for(incident, member)
    assert reverse("notifications:action", args=[token]) == action_url(token)


def test_get_shows_a_confirmation_with_one_button(client, incident, member):
    response = client.get(action_url(token_for(incident, member)))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Acknowledge this incident?" in body
    assert "<strong>nightly-backup</strong> (production)" in body
    assert "Missed heartbeat" in body
    assert body.count("<form") == 1
    assert '<form method="post">' in body
    assert '<button type="submit" class="button">Acknowledge</button>' in body


def test_confirmation_page_is_not_cached_framed_or_leaked(client, incident, member):
    response = client.get(action_url(token_for(incident, member)))
    assert "no-store" in response["Cache-Control"]
    # A page with one button must not be framed (clickjacking) ...
    assert response["X-Frame-Options"] == "DENY"
    # ... and the token in its URL must not leave with a Referer to another site.
    assert response["Referrer-Policy"] == "same-origin"


def test_get_changes_nothing_however_often(client, incident, member):
    before = state_of(incident)
    for action in ("acknowledge", "resolve"):
        token = token_for(incident, member, action)
        for _ in range(3):
            assert client.get(action_url(token)).status_code == 200
    assert state_of(incident) == before
    assert incident.state == Incident.State.TRIGGERED


def test_post_acknowledges_as_the_recipient(client, incident, member):
    response = client.post(action_url(token_for(incident, member)))
    assert response.status_code == 200
    assert "is now" in response.content.decode()
    assert "acknowledged" in response.content.decode()
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    assert incident.acknowledged_by == member
    assert incident.acknowledged_at is not None


def test_post_resolves_and_queues_the_recovery_email(client, member, owner, check, t0):
    # Opened the way the sweeper opens it: everyone on the team is told, so everyone hears
    # that it is resolved.
    incident = open_for(check, t0)
    response = client.post(action_url(token_for(incident, member, "resolve")))
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution == Incident.Resolution.MANUAL
    assert incident.resolved_by == member
    assert sorted(
        Notification.objects.filter(incident=incident, event="resolved").values_list(
            "address", flat=True
        )
    ) == sorted([member.email, owner.email])


def test_post_without_csrf_token_works(incident, member):
    """The token in the URL is the credential, so there is no CSRF check to pass, and that is
    safe: CSRF abuses a victim's ambient credential (a session cookie) to make a request the
    victim did not mean. Here nothing ambient is used: the view reads no session, and the
    action is carried out as the token's recipient, whoever sends it. A forger must already
    hold the token, and then they could click it themselves; the token is bound to one
    incident, one action and one recipient, expires, and works once."""
    csrf_checking = Client(enforce_csrf_checks=True)
    response = csrf_checking.post(action_url(token_for(incident, member)))
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.acknowledged_by == member


def test_a_signed_in_session_does_not_change_who_acts(client, incident, member, owner):
    client.force_login(owner)
    assert client.post(action_url(token_for(incident, member))).status_code == 200
    incident.refresh_from_db()
    assert incident.acknowledged_by == member


def test_replayed_post_gets_409_and_changes_nothing(client, incident, member):
    token = token_for(incident, member, "resolve")
    assert client.post(action_url(token)).status_code == 200
    after_first = state_of(incident)

    assert_refused(client.post(action_url(token)), 409, "This link has already been used.")
    assert_refused(client.get(action_url(token)), 409, "This link has already been used.")
    assert state_of(incident) == after_first


def test_token_of_a_resolved_incident_gets_409(client, incident, member, owner, t0):
    resolve_incident(incident_id=incident.id, user=owner, now=t0)
    before = state_of(incident)
    for action in ("acknowledge", "resolve"):
        token = token_for(incident, member, action)
        assert_refused(client.get(action_url(token)), 409, "This incident is already resolved.")
        assert_refused(client.post(action_url(token)), 409, "This incident is already resolved.")
    assert state_of(incident) == before


def test_acknowledge_after_someone_else_did_gets_409(client, incident, member, owner, t0):
    acknowledge_incident(incident_id=incident.id, user=owner, now=t0)
    before = state_of(incident)
    response = client.post(action_url(token_for(incident, member)))
    assert_refused(response, 409, "This incident is already acknowledged.")
    assert state_of(incident) == before
    assert incident.acknowledged_by == owner


def test_resolve_link_still_works_after_acknowledging(client, incident, member):
    assert client.post(action_url(token_for(incident, member))).status_code == 200
    assert client.post(action_url(token_for(incident, member, "resolve"))).status_code == 200
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert incident.acknowledged_by == member


def _tampered(incident, user):
    token = token_for(incident, user)
    return flip(token, len(token) - 3)


def _wrong_action(incident, user):
    payload = {"i": incident.id, "a": "delete", "u": user.id, "n": "abcdefghijklmnop"}
    return signing.dumps(payload, salt=SALT, compress=False)


def _other_purpose(incident, user):
    return signing.dumps({"i": incident.id, "a": "acknowledge", "u": user.id, "n": "x"})


@pytest.mark.parametrize(
    ("make_token", "status", "message"),
    [
        (_tampered, 400, "This link is not valid: it may have been altered."),
        (_wrong_action, 400, "This link is not valid."),
        (_other_purpose, 400, "This link is not valid: it may have been altered."),
        (lambda incident, user: "not-a-token", 400, "This link is not valid"),
        (lambda incident, user: "a:b:c", 400, "This link is not valid"),
        (lambda incident, user: "x" * (MAX_TOKEN_LENGTH + 1), 400, "This link is not valid."),
        (lambda incident, user: "x" * 20_000, 400, "This link is not valid."),
    ],
    ids=[
        "tampered",
        "wrong-action",
        "signed-for-another-purpose",
        "malformed",
        "three-parts",
        "oversized",
        "huge",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_bad_token_gets_a_clear_400(client, incident, member, make_token, status, message, method):
    before = state_of(incident)
    response = getattr(client, method)(action_url(make_token(incident, member)))
    assert_refused(response, status, message)
    assert state_of(incident) == before


def test_oversized_token_is_refused_before_it_is_read(client, incident, member):
    # A genuine token padded past the limit: refused on its length alone.
    token = token_for(incident, member) + "A" * MAX_TOKEN_LENGTH
    before = state_of(incident)
    assert_refused(client.post(action_url(token)), 400, "This link is not valid.")
    assert state_of(incident) == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_expired_token_gets_400(client, incident, member, settings, method):
    settings.ACTION_TOKEN_MAX_AGE = timedelta(days=7)
    with time_machine.travel("2026-11-02 03:00:00+00:00", tick=False) as traveller:
        token = token_for(incident, member)
        traveller.shift(timedelta(days=7, seconds=1))
        before = state_of(incident)
        response = getattr(client, method)(action_url(token))
    assert_refused(response, 400, "This link has expired.")
    assert state_of(incident) == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_token_of_a_deleted_user_gets_400(client, incident, member, method):
    token = token_for(incident, member)
    member.delete()
    before = state_of(incident)
    response = getattr(client, method)(action_url(token))
    assert_refused(response, 400, "This link no longer points to anything.")
    assert state_of(incident) == before


def test_token_of_a_deleted_incident_gets_400(client, incident, member):
    token = token_for(incident, member)
    incident.delete()
    assert_refused(client.post(action_url(token)), 400, "This link no longer points to anything.")
    assert not UsedActionToken.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_token_of_someone_who_left_the_team_gets_403(client, incident, member, method):
    token = token_for(incident, member)
    Membership.objects.filter(user=member).delete()
    before = state_of(incident)
    response = getattr(client, method)(action_url(token))
    assert_refused(response, 403, "You can no longer act on this team&#x27;s incidents.")
    assert state_of(incident) == before


def test_token_of_a_viewer_gets_403(client, incident, viewer):
    before = state_of(incident)
    assert_refused(client.post(action_url(token_for(incident, viewer))), 403, "no longer act")
    assert state_of(incident) == before


@pytest.mark.parametrize("method", ["put", "patch", "delete", "head", "options"])
def test_other_methods_get_405_and_change_nothing(client, incident, member, method):
    before = state_of(incident)
    response = getattr(client, method)(action_url(token_for(incident, member)))
    assert response.status_code == 405
    assert state_of(incident) == before


def test_hostile_check_name_is_escaped_on_the_pages(client, incident, member):
    incident.owner.name = '<script>alert("x")</script>'
    incident.owner.save()
    token = token_for(incident, member)
    for response in (client.get(action_url(token)), client.post(action_url(token))):
        body = response.content.decode()
        assert "<script>alert" not in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_token_with_a_slash_is_not_routed(client, incident, member):
    # The str converter stops at "/": a token is never split over path segments.
    assert client.get(action_url(token_for(incident, member)) + "extra/").status_code == 404
