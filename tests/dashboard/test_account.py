"""The account page (display time zone, email, password) and the reader's zone on pages:
chosen zone first, then the browser's cookie, then UTC; bad input is refused next to its
field."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from apps.checks.models import Ping
from apps.escalation.models import Rotation
from apps.teams.display_time import BROWSER_ZONE_COOKIE
from apps.teams.models import UserSettings
from tests.browser.helpers import PASSWORD

ACCOUNT = reverse("dashboard:account")


def client_for(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(ACCOUNT)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_account_page_shows_the_three_forms_and_the_zone_list(owner):
    body = client_for(owner).get(ACCOUNT).text
    assert 'id="display-zone-form"' in body and 'id="email-form"' in body
    assert 'id="password-form"' in body
    assert '<option value="Europe/Riga">' in body
    assert "Times are in UTC" in body  # no choice, no cookie


def test_choosing_a_zone_saves_it_and_pages_use_it(owner):
    client = client_for(owner)
    response = client.post(ACCOUNT, {"display_timezone": "Europe/Riga", "save_zone": ""})
    assert response.status_code == 302
    assert UserSettings.objects.get(user=owner).display_timezone == "Europe/Riga"
    body = client.get(ACCOUNT).text
    assert "Times are in Europe/Riga" in body
    # A browser cookie never overrides a chosen zone.
    client.cookies[BROWSER_ZONE_COOKIE] = "Asia/Tokyo"
    assert "Times are in Europe/Riga" in client.get(ACCOUNT).text
    # Clearing it goes back to the browser's zone.
    client.post(ACCOUNT, {"display_timezone": "", "save_zone": ""})
    assert "Times are in Asia/Tokyo (your browser's zone)" in client.get(ACCOUNT).text


@pytest.mark.parametrize(
    "value",
    ["Mars/Olympus", "Europe/Riga" + "x" * 100, "<script>alert(1)</script>", "../etc/passwd"],
    ids=["unknown", "oversized", "hostile", "path"],
)
def test_unknown_zone_is_refused_next_to_the_field(owner, value):
    response = client_for(owner).post(ACCOUNT, {"display_timezone": value, "save_zone": ""})
    assert response.status_code == 400
    assert "id_display_timezone_error" in response.text
    assert "<script>alert(1)</script>" not in response.text
    assert not UserSettings.objects.filter(user=owner).exists()


@pytest.mark.parametrize(
    "cookie", ["Not/AZone", "x" * 500, "Europe/Riga\r\nSet-Cookie: a=b"], ids=str
)
def test_hostile_zone_cookie_falls_back_to_utc(owner, cookie):
    client = client_for(owner)
    client.cookies[BROWSER_ZONE_COOKIE] = cookie
    response = client.get(ACCOUNT)
    assert response.status_code == 200
    assert "Times are in UTC" in response.text


def test_check_page_times_follow_the_reader_zone(owner, check):
    Ping.objects.create(
        owner=check,
        n=1,
        kind=Ping.Kind.SUCCESS,
        received_at=datetime(2026, 12, 2, 7, 0, 41, tzinfo=UTC),
        method="GET",
    )
    UserSettings.objects.create(user=owner, display_timezone="Europe/Riga")
    body = client_for(owner).get(reverse("dashboard:check-detail", args=[check.id])).text
    assert "2 Dec 2026, 09:00:41 EET" in body
    assert " UTC</time>" not in body


def test_email_change_needs_the_current_password(owner):
    client = client_for(owner)
    response = client.post(
        ACCOUNT, {"email": "new@example.com", "current_password": "wrong", "save_email": ""}
    )
    assert response.status_code == 400
    assert "That is not your current password." in response.text
    owner.refresh_from_db()
    assert owner.email != "new@example.com"

    response = client.post(
        ACCOUNT,
        {"email": "new@example.com", "current_password": PASSWORD, "save_email": ""},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.email == "new@example.com"


@pytest.mark.parametrize(
    "email", ["not an address", "a" * 250 + "@example.com", ""], ids=["malformed", "long", "empty"]
)
def test_bad_email_is_refused(owner, email):
    before = owner.email
    response = client_for(owner).post(
        ACCOUNT, {"email": email, "current_password": PASSWORD, "save_email": ""}
    )
    assert response.status_code == 400
    owner.refresh_from_db()
    assert owner.email == before


def test_email_of_another_account_is_refused(owner, member):
    response = client_for(owner).post(
        ACCOUNT, {"email": member.email.upper(), "current_password": PASSWORD, "save_email": ""}
    )
    assert response.status_code == 400
    assert "Another account uses this address." in response.text


def test_password_change_keeps_this_session_and_checks_the_old_one(owner):
    client = client_for(owner)
    new = "a much longer passphrase 42"
    refused = client.post(
        ACCOUNT,
        {
            "old_password": "wrong",
            "new_password1": new,
            "new_password2": new,
            "save_password": "",
        },
    )
    assert refused.status_code == 400
    assert "id_old_password_error" in refused.text
    response = client.post(
        ACCOUNT,
        {
            "old_password": PASSWORD,
            "new_password1": new,
            "new_password2": new,
            "save_password": "",
        },
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(new)
    assert client.get(ACCOUNT).status_code == 200  # still signed in


def test_post_without_a_known_button_saves_nothing(owner):
    response = client_for(owner).post(ACCOUNT, {"display_timezone": "Europe/Riga"})
    assert response.status_code == 302
    assert not UserSettings.objects.filter(user=owner).exists()


def test_rotation_handoff_is_shown_in_the_rotations_zone(owner, team):
    rotation = Rotation.objects.create(
        team=team,
        name="Riga days",
        timezone="Europe/Riga",
        cadence="daily",
        handoff_time="09:00",
        start_date=(datetime.now(UTC) - timedelta(days=3)).date(),
    )
    rotation.members.create(user=owner, order=0)
    UserSettings.objects.create(user=owner, display_timezone="America/New_York")
    url = reverse("escalation:rotation-detail", args=[rotation.id])
    body = client_for(owner).get(url).text
    handoffs = body[body.index('id="handoffs"') :]
    handoffs = handoffs[: handoffs.index("</ul>")]
    # 09:00 in Riga, labelled with Riga's zone, and the reader's own time beside it.
    # (The handoffs listed are within weeks of now: winter or summer time, never the UTC hour.)
    assert ", 09:00 EET</time> (Europe/Riga)" in handoffs or (
        ", 09:00 EEST</time> (Europe/Riga)" in handoffs
    )
    assert ", 02:00 EST your time" in handoffs or ", 02:00 EDT your time" in handoffs
    assert "07:00" not in handoffs and "06:00" not in handoffs
