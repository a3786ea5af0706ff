"""Sign up, password reset by email and the login page's links, through Django's test client."""

import re

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.teams.models import Membership, Team

SIGNUP = reverse("teams:signup")
RESET = reverse("password_reset")
PASSWORD = "a long enough passphrase"
VALID = {
    "team_name": "Ops & Friends",
    "username": "dana",
    "email": "dana@example.com",
    "password1": PASSWORD,
    "password2": PASSWORD,
}
User = get_user_model()


def counts():
    return User.objects.count(), Team.objects.count(), Membership.objects.count()


def test_sign_up_creates_a_team_owned_by_the_new_user_and_logs_in(client, db):
    response = client.post(SIGNUP, VALID)
    assert response.status_code == 302
    assert response.url == reverse("dashboard:check-list")
    user = User.objects.get(username="dana")
    membership = Membership.objects.get(user=user)
    assert membership.role == Membership.Role.OWNER
    assert membership.team.name == "Ops & Friends"
    assert membership.team.slug == "ops-friends"
    assert user.email == "dana@example.com"
    assert user.check_password(PASSWORD)
    assert client.session[SESSION_KEY] == str(user.pk)
    page = client.get(response.url)
    assertContains(page, "Checks of Ops &amp; Friends")
    assertContains(page, "You own the team")


def test_two_teams_with_the_same_name_get_distinct_slugs(client, db):
    client.post(SIGNUP, VALID)
    Client().post(SIGNUP, {**VALID, "username": "erin", "email": "erin@example.com"})
    assert sorted(Team.objects.values_list("slug", flat=True)) == ["ops-friends", "ops-friends-2"]


def test_sign_up_page_has_labelled_fields(client, db):
    response = client.get(SIGNUP)
    assert response.status_code == 200
    for field in ("team_name", "username", "email", "password1", "password2"):
        assertContains(response, f'<label for="id_{field}">')


BAD_SIGNUPS = {
    "missing team": ({"team_name": ""}, "team_name", "This field is required."),
    "blank team": ({"team_name": "   "}, "team_name", "This field is required."),
    "oversized team": ({"team_name": "x" * 101}, "team_name", "at most 100 characters"),
    "bad email": ({"email": "not-an-email"}, "email", "Enter a valid email address."),
    "missing email": ({"email": ""}, "email", "This field is required."),
    "passwords differ": ({"password2": "something else"}, "password2", "t match."),
    "short password": (
        {"password1": "short", "password2": "short"},
        "password2",
        "too short",
    ),
    "common password": (
        {"password1": "password123", "password2": "password123"},
        "password2",
        "too common",
    ),
    "hostile username": ({"username": "<script>x</script>"}, "username", "Enter a valid"),
    "oversized username": ({"username": "u" * 151}, "username", "at most 150 characters"),
}


@pytest.mark.parametrize(("change", "field", "message"), BAD_SIGNUPS.values(), ids=BAD_SIGNUPS)
def test_invalid_sign_up_says_why_next_to_the_field_and_creates_nothing(
    client, db, change, field, message
):
    response = client.post(SIGNUP, {**VALID, **change})
    assert response.status_code == 400
    assert counts() == (0, 0, 0)
    body = response.content.decode()
    error = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', body, re.S)
    assert error, body
    assert message in error.group(1)
    assert SESSION_KEY not in client.session
    assert "<script>x</script>" not in body


def test_sign_up_with_a_taken_username_is_refused_whatever_its_case(client, owner):
    before = counts()
    response = client.post(SIGNUP, {**VALID, "username": "ALICE"})
    assert response.status_code == 400
    assertContains(response, "A user with that username already exists.", status_code=400)
    assert counts() == before


def test_empty_sign_up_post_is_a_form_error(client, db):
    response = client.post(SIGNUP, {})
    assert response.status_code == 400
    assert counts() == (0, 0, 0)


def test_sign_up_without_csrf_token_is_refused(db):
    client = Client(enforce_csrf_checks=True)
    assert client.post(SIGNUP, VALID).status_code == 403
    assert counts() == (0, 0, 0)


def test_signed_in_user_is_sent_from_sign_up_to_the_checks(owner_client):
    before = counts()
    response = owner_client.post(SIGNUP, {**VALID, "username": "other"})
    assert response.status_code == 302
    assert counts() == before


def test_login_page_links_to_sign_up_and_password_reset(client, db):
    response = client.get(reverse("login"))
    assertContains(response, f'href="{SIGNUP}"')
    assertContains(response, f'href="{RESET}"')


# --- password reset ---------------------------------------------------------------------------


def reset_link(message) -> str:
    match = re.search(r"https://tocsin\.example(/password-reset/[^/\s]+/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_password_reset_mails_a_link_on_the_site_url_that_sets_a_new_password(
    client, owner, settings
):
    # Even behind a proxy that lets any Host through, the link is built from SITE_URL.
    settings.ALLOWED_HOSTS = ["*"]
    response = client.post(RESET, {"email": owner.email}, headers={"host": "evil.example"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    assert message.subject == "Reset your Tocsin password"
    assert "evil.example" not in message.body  # the link never follows the Host header
    link = reset_link(message)
    form_page = client.get(link, follow=True)
    assertContains(form_page, "Choose a new password")
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    # The link works once.
    again = client.get(link, follow=True)
    assertContains(again, "This link is not valid")


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, db):
    response = client.post(RESET, {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert mail.outbox == []


@pytest.mark.parametrize("email", ["", "not-an-email", "x" * 300 + "@example.com"])
def test_password_reset_with_a_malformed_address_says_so(client, owner, email):
    response = client.post(RESET, {"email": email})
    assert response.status_code == 200
    assertContains(response, 'class="errorlist"')
    assert mail.outbox == []


def test_tampered_reset_link_is_refused_and_changes_nothing(client, owner):
    client.post(RESET, {"email": owner.email})
    link = reset_link(mail.outbox[0])
    tampered = link[:-3] + "xyz/"
    response = client.get(tampered, follow=True)
    assertContains(response, "This link is not valid")
    assertNotContains(response, "new_password1")
    owner.refresh_from_db()
    assert owner.check_password("correct horse battery")


def test_reset_with_mismatched_passwords_keeps_the_old_one(client, owner):
    client.post(RESET, {"email": owner.email})
    form_page = client.get(reset_link(mail.outbox[0]), follow=True)
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": PASSWORD, "new_password2": "different"})
    assert response.status_code == 200
    assertContains(response, 'class="errorlist"')
    owner.refresh_from_db()
    assert owner.check_password("correct horse battery")
