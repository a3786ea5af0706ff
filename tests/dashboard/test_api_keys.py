"""The API keys page (/team/api-keys/): admins and owners create a key (shown once; the API then
accepts it) and revoke it (the API then refuses it). Members and viewers get 403, another team's
key 404; bad input changes nothing."""

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.api.keys import create_api_key, hash_key
from apps.api.models import ApiKey
from apps.teams.models import Membership
from tests.factories import MembershipFactory

KEYS = reverse("dashboard:api-keys")
HOSTILE = '<script>alert("x")</script>'


def revoke_url(key) -> str:
    return reverse("dashboard:api-key-revoke", args=[key.id])


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def admin(team):
    return MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="ada").user


def api_status(secret: str) -> int:
    return Client().get("/api/tocsin/v1/checks/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_admin_creates_a_key_shown_once_that_the_api_accepts(request, team, who):
    user = request.getfixturevalue(who)
    client = client_for(user)
    response = client.post(KEYS, {"name": "terraform"})
    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert (key.team, key.name, key.is_read_only) == (team, "terraform", False)
    secret = response.context["new_key"].secret
    assert hash_key(secret) == key.key_hash and secret not in (key.key_hash, key.prefix)
    assertContains(response, f'<code id="new-key-secret">{secret}</code>')
    assertContains(response, "it is shown only this once")
    assert response["Cache-Control"].startswith("max-age=0")
    assert api_status(secret) == 200
    # Never again: the page lists the key by its prefix only.
    again = client.get(KEYS)
    assertNotContains(again, secret)
    assertContains(again, f"<code>{key.prefix}…</code>")


def test_read_only_key_is_created_read_only(owner):
    client_for(owner).post(KEYS, {"name": "grafana", "is_read_only": "on"})
    assert ApiKey.objects.get().is_read_only is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Give the key a name."),
        ({"name": "   "}, "Give the key a name."),
        ({"name": "x" * 101}, "Ensure this value has at most 100 characters"),
        ({"name": "a\x00b"}, "Null characters are not allowed."),
    ],
    ids=["missing", "blank", "oversized", "nul"],
)
def test_bad_name_is_refused_next_to_the_field_and_creates_nothing(owner, data, message):
    response = client_for(owner).post(KEYS, data)
    assert response.status_code == 400
    assertContains(response, message, status_code=400)
    assertContains(response, "No key was created", status_code=400)
    assert not ApiKey.objects.exists()


def test_hostile_name_is_shown_escaped(owner):
    response = client_for(owner).post(KEYS, {"name": HOSTILE})
    assert response.status_code == 200
    assertNotContains(response, HOSTILE)
    assertContains(response, "&lt;script&gt;")


def test_owner_revokes_a_key_and_the_api_refuses_it(owner, team):
    new = create_api_key(team=team, name="ci", is_read_only=False)
    assert api_status(new.secret) == 200
    response = client_for(owner).post(revoke_url(new.api_key), follow=True)
    assertContains(response, "Key revoked")
    new.api_key.refresh_from_db()
    assert new.api_key.revoked_at is not None
    assert api_status(new.secret) == 401
    # A second revoke changes nothing and says so.
    revoked_at = new.api_key.revoked_at
    response = client_for(owner).post(revoke_url(new.api_key), follow=True)
    assertContains(response, "already revoked")
    new.api_key.refresh_from_db()
    assert new.api_key.revoked_at == revoked_at


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_members_and_viewers_get_403_and_no_link(request, team, who):
    user = request.getfixturevalue(who)
    new = create_api_key(team=team, name="ci", is_read_only=False)
    client = client_for(user)
    assert client.get(KEYS).status_code == 403
    assert client.post(KEYS, {"name": "sneaky"}).status_code == 403
    assert client.post(revoke_url(new.api_key)).status_code == 403
    assert list(ApiKey.objects.values_list("name", "revoked_at")) == [("ci", None)]
    assertNotContains(client.get(reverse("dashboard:check-list")), f'href="{KEYS}"')


def test_admins_see_the_link_in_the_navigation(admin, owner):
    for user in (admin, owner):
        assertContains(client_for(user).get(reverse("dashboard:check-list")), f'href="{KEYS}"')


def test_another_teams_key_is_404_and_stays_live(owner, other_team):
    theirs = create_api_key(team=other_team, name="theirs", is_read_only=False)
    assert client_for(owner).post(revoke_url(theirs.api_key)).status_code == 404
    theirs.api_key.refresh_from_db()
    assert theirs.api_key.revoked_at is None
    assertNotContains(client_for(owner).get(KEYS), "theirs")


def test_unknown_key_is_404(owner):
    assert client_for(owner).post("/team/api-keys/999999/revoke/").status_code == 404


def test_revoke_by_get_is_refused(owner, team):
    new = create_api_key(team=team, name="ci", is_read_only=False)
    assert client_for(owner).get(revoke_url(new.api_key)).status_code == 405


def test_create_and_revoke_without_csrf_token_are_refused(owner, team):
    new = create_api_key(team=team, name="ci", is_read_only=False)
    client = client_for(owner, enforce_csrf_checks=True)
    assert client.post(KEYS, {"name": "x"}).status_code == 403
    assert client.post(revoke_url(new.api_key)).status_code == 403
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None


def test_anonymous_visitor_is_sent_to_log_in(client, db):
    response = client.get(KEYS)
    assert response.status_code == 302 and "/login/" in response.url
