"""The dashboard's forms and pages for the provider kinds (PagerDuty, Opsgenie, Telegram,
Discord, Teams, Pushover, SMS): created through the form, secrets never shown again (not on the
channel's page, not in the edit form), a blank secret on edit keeps the stored one, and bad
input (malformed, oversized, missing, hostile) refused with a clear message. Also the pure rule
that reads a provider's Retry-After."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from apps.notifications.grouping import retry_after_delay
from apps.notifications.models import Channel
from apps.teams.models import Membership
from tests.factories import MembershipFactory

from .conftest import make_channel
from .providers import (
    BOT_TOKEN,
    KINDS,
    OPSGENIE_KEY,
    PUSHOVER_APP,
    PUSHOVER_USER,
    ROUTING_KEY,
    SECRETS,
    TWILIO_SID,
    TWILIO_TOKEN,
    settings_of,
)

PUBLIC = "https://93.184.216.34"  # an IP literal: no DNS needed


@pytest.fixture
def admin(team):
    return MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="ada").user


def create(client, kind, **data):
    return client.post(reverse("notifications:channel-create", args=[kind]), data)


def form_data(kind: str) -> dict:
    return {key: str(value) for key, value in settings_of(kind, PUBLIC).items()}


@pytest.mark.parametrize("kind", KINDS)
def test_admin_creates_each_kind_and_its_secrets_are_never_shown_again(client, admin, kind):
    client.force_login(admin)
    response = create(client, kind, name=f"my {kind}", is_enabled="on", **form_data(kind))
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get(name=f"my {kind}")
    expected = settings_of(kind, PUBLIC)
    assert channel.config == expected

    detail = client.get(response["Location"]).content.decode()
    edit = client.get(reverse("notifications:channel-edit", args=[channel.id])).content.decode()
    for page in (detail, edit):
        for secret in SECRETS[kind]:
            assert secret not in page
    assert "stored, never shown again" in detail
    assert 'type="password"' in edit

    # Saving the edit form with the secrets left blank keeps them.
    kept = {key: value for key, value in form_data(kind).items() if value not in SECRETS[kind]}
    kept = {k: v for k, v in kept.items() if not any(s in v for s in SECRETS[kind])}
    edit_url = reverse("notifications:channel-edit", args=[channel.id])
    assert client.post(edit_url, {"name": "renamed", "is_enabled": "on", **kept}).status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.config) == ("renamed", expected)


def test_a_new_secret_on_edit_replaces_the_stored_one(client, admin, team):
    client.force_login(admin)
    channel = make_channel(team, "pagerduty", name="pd", routing_key=ROUTING_KEY)
    new_key = "N" * 32
    url = reverse("notifications:channel-edit", args=[channel.id])
    assert client.post(url, {"name": "pd", "routing_key": new_key}).status_code == 302
    channel.refresh_from_db()
    assert channel.config == {"routing_key": new_key}
    assert channel.is_enabled is False  # the box was not ticked


def test_the_page_shows_plain_settings_and_not_secrets(client, admin, team):
    client.force_login(admin)
    channel = make_channel(team, "sms", name="texts", **settings_of("sms", PUBLIC))
    page = client.get(reverse("notifications:channel-detail", args=[channel.id])).content.decode()
    assert TWILIO_SID in page and "+15551234567" in page
    assert TWILIO_TOKEN not in page
    assert "Auth token: stored, never shown again" in page


def test_a_new_channel_needs_its_secrets(client, admin):
    client.force_login(admin)
    response = create(client, "pagerduty", name="pd", is_enabled="on")
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not Channel.objects.exists()


LONG = "x" * 5000


@pytest.mark.parametrize(
    ("kind", "data", "error"),
    [
        ("pagerduty", {"routing_key": "short"}, "32 letters and digits"),
        ("pagerduty", {"routing_key": "k" * 31 + "!"}, "32 letters and digits"),
        ("pagerduty", {"routing_key": LONG}, "at most 64 characters"),
        ("opsgenie", {"api_key": "not-a-key", "region": "eu"}, "looks like 01234567-"),
        ("opsgenie", {"api_key": OPSGENIE_KEY, "region": "mars"}, "Select a valid choice"),
        ("opsgenie", {"api_key": OPSGENIE_KEY}, "This field is required"),
        ("telegram", {"bot_token": "123:abc", "chat_id": "42"}, "A bot token looks like"),
        ("telegram", {"bot_token": BOT_TOKEN, "chat_id": "<script>"}, "numeric chat id"),
        ("telegram", {"bot_token": BOT_TOKEN, "chat_id": "-12 OR 1=1"}, "numeric chat id"),
        ("telegram", {"bot_token": BOT_TOKEN}, "This field is required"),
        ("discord", {"url": f"{PUBLIC}/not/a/webhook"}, "/api/webhooks/"),
        ("discord", {"url": "http://127.0.0.1/api/webhooks/1/x"}, "private, loopback"),
        ("discord", {"url": "javascript:alert(1)//api/webhooks/"}, "http:// or https://"),
        ("teams", {"url": "http://169.254.169.254/latest/meta-data"}, "private, loopback"),
        ("teams", {"url": f"{PUBLIC}/{LONG}"}, "at most"),
        (
            "pushover",
            {"user_key": PUSHOVER_USER, "app_token": "short", "emergency_retry": "60"},
            "30 letters and digits",
        ),
        (
            "pushover",
            {"user_key": PUSHOVER_USER, "app_token": PUSHOVER_APP, "emergency_retry": "5"},
            "greater than or equal to 30",
        ),
        (
            "pushover",
            {"user_key": PUSHOVER_USER, "app_token": PUSHOVER_APP, "emergency_expire": "99999"},
            "less than or equal to 10800",
        ),
        (
            "pushover",
            {
                "user_key": PUSHOVER_USER,
                "app_token": PUSHOVER_APP,
                "emergency_retry": "600",
                "emergency_expire": "60",
            },
            "at least one repeat",
        ),
        (
            "pushover",
            {"user_key": PUSHOVER_USER, "app_token": PUSHOVER_APP, "device": "a phone; rm"},
            "letters, digits",
        ),
        (
            "sms",
            {"account_sid": "XX" + "0" * 32, "auth_token": TWILIO_TOKEN, "from_number": "+1555"},
            "AC and 32 hex digits",
        ),
        (
            "sms",
            {
                "account_sid": TWILIO_SID,
                "auth_token": TWILIO_TOKEN,
                "from_number": "+15005550006",
                "to_number": "555-1234",
            },
            "international format",
        ),
        (
            "sms",
            {
                "account_sid": TWILIO_SID,
                "auth_token": TWILIO_TOKEN,
                "from_number": "+15005550006",
                "to_number": "+1555123456789012345",
            },
            "at most 16 characters",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None,
)
def test_bad_settings_are_refused_with_a_clear_message(client, admin, kind, data, error):
    client.force_login(admin)
    response = create(client, kind, name="x", is_enabled="on", **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Channel.objects.exists()


def test_an_outsider_gets_404_on_a_provider_channel(client, outsider, team):
    channel = make_channel(team, "pagerduty", routing_key=ROUTING_KEY)
    client.force_login(outsider)
    for name in ("channel-detail", "channel-edit"):
        assert client.get(reverse(f"notifications:{name}", args=[channel.id])).status_code == 404
    assert client.post(reverse("notifications:channel-test", args=[channel.id])).status_code == 404


def test_the_list_offers_every_kind(client, admin):
    client.force_login(admin)
    page = client.get(reverse("notifications:channel-list")).content.decode()
    for kind in KINDS:
        assert reverse("notifications:channel-create", args=[kind]) in page


# --- Retry-After, pure ------------------------------------------------------------------------

NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
CAP = timedelta(hours=1)


@pytest.mark.parametrize(
    ("value", "delay"),
    [
        ("120", timedelta(seconds=120)),
        (" 7 ", timedelta(seconds=7)),
        ("1.5", timedelta(seconds=1.5)),  # Discord sends fractions
        ("0", timedelta(0)),
        ("-30", timedelta(0)),
        ("999999999", CAP),
        ("Mon, 02 Nov 2026 03:02:00 GMT", timedelta(minutes=2)),
        ("Mon, 02 Nov 2026 02:00:00 GMT", timedelta(0)),  # already past
        ("Tue, 03 Nov 2026 03:00:00 GMT", CAP),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Mon, 02 Nov 2026 03:02:00 -0000", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_within_the_cap(value, delay):
    assert retry_after_delay(value, now=NOW, cap=CAP) == delay
