"""/api/tocsin/v1/channels/ for the provider kinds: created per kind with flat settings, their
secrets never in any answer (create, read, list, update), kept when an update leaves them out,
a setting of another kind or a malformed one refused with field details, and another team's
channel a 404."""

import pytest

from apps.notifications.models import Channel
from tests.notifications.providers import (
    KINDS,
    OPSGENIE_KEY,
    ROUTING_KEY,
    SECRETS,
    TWILIO_SID,
    settings_of,
)

PUBLIC = "https://93.184.216.34"
CHANNELS = "/api/tocsin/v1/channels/"
SECRET_NAMES = {
    "pagerduty": ["routing_key"],
    "opsgenie": ["api_key"],
    "telegram": ["bot_token"],
    "discord": ["url"],
    "teams": ["url"],
    "pushover": ["user_key", "app_token"],
    "sms": ["auth_token"],
}
PLAIN = {
    "pagerduty": {},
    "opsgenie": {"region": "eu"},
    "telegram": {"chat_id": "-1001234567890"},
    "discord": {},
    "teams": {},
    "pushover": {"emergency_retry": 60, "emergency_expire": 3600},
    "sms": {"account_sid": TWILIO_SID, "from_number": "+15005550006", "to_number": "+15551234567"},
}


def body_of(kind: str, **extra) -> dict:
    return {"name": f"my {kind}", "kind": kind, **settings_of(kind, PUBLIC), **extra}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_created_and_its_secrets_never_come_back(api, ro_api, team, kind):
    created = api.post(CHANNELS, body_of(kind))
    assert created.status_code == 201, created.json()
    answer = created.json()
    assert answer["secrets"] == SECRET_NAMES[kind]
    assert answer["settings"] == PLAIN[kind]
    channel = Channel.objects.get(id=answer["id"])
    assert channel.config == settings_of(kind, PUBLIC)
    url = f"{CHANNELS}{channel.id}/"

    renamed = api.patch(url, {"name": "renamed"})
    assert renamed.status_code == 200, renamed.json()
    replaced = api.put(url, {"name": "again", "kind": kind, **PLAIN[kind]})
    assert replaced.status_code == 200, replaced.json()
    channel.refresh_from_db()
    assert (channel.name, channel.config) == ("again", settings_of(kind, PUBLIC))

    for response in (
        created,
        renamed,
        replaced,
        api.get(url),
        api.get(CHANNELS),
        ro_api.get(url),
        ro_api.get(CHANNELS),
    ):
        text = response.content.decode()
        for secret in SECRETS[kind]:
            assert secret not in text


def test_a_secret_webhook_url_shows_its_host_only(api):
    answer = api.post(CHANNELS, body_of("discord")).json()
    assert answer["url"] == "https://93.184.216.34/…"
    assert answer["secrets"] == ["url"]


def test_a_new_secret_replaces_the_old_one(api):
    answer = api.post(CHANNELS, body_of("pagerduty")).json()
    new_key = "N" * 32
    assert api.patch(f"{CHANNELS}{answer['id']}/", {"routing_key": new_key}).status_code == 200
    assert Channel.objects.get(id=answer["id"]).config == {"routing_key": new_key}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (body_of("pagerduty", routing_key="short"), "routing_key"),
        (body_of("pagerduty", routing_key=12345678901234567890123456789012), "routing_key"),
        (body_of("pagerduty", routing_key="k" * 5000), "routing_key"),
        ({"name": "pd", "kind": "pagerduty"}, "routing_key"),
        (body_of("pagerduty", chat_id="42"), "chat_id"),
        (body_of("opsgenie", region="mars"), "region"),
        (body_of("opsgenie", api_key="GenieKey x"), "api_key"),
        (body_of("telegram", chat_id="<b>hi</b>"), "chat_id"),
        (body_of("telegram", url=PUBLIC + "/x"), "url"),
        (body_of("discord", url="http://10.0.0.5/api/webhooks/1/x"), "url"),
        (body_of("teams", url="file:///etc/passwd"), "url"),
        (body_of("pushover", emergency_retry="60"), "emergency_retry"),
        (body_of("pushover", emergency_retry=10), "emergency_retry"),
        (body_of("pushover", emergency_expire=True), "emergency_expire"),
        (body_of("sms", to_number="+1 555 123"), "to_number"),
        (body_of("sms", account_sid=None), "account_sid"),
        (body_of("sms", auth_token=""), "auth_token"),
        (body_of("sms", from_number="Tocsin"), "from_number"),
    ],
)
def test_bad_settings_are_refused_with_field_details(api, body, field):
    response = api.post(CHANNELS, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert not Channel.objects.exists()


def test_another_teams_provider_channel_is_a_404(api, other_api):
    answer = api.post(CHANNELS, body_of("opsgenie")).json()
    url = f"{CHANNELS}{answer['id']}/"
    assert other_api.get(url).status_code == 404
    assert other_api.patch(url, {"api_key": OPSGENIE_KEY}).status_code == 404
    assert other_api.delete(url).status_code == 404
    assert Channel.objects.get(id=answer["id"]).config["api_key"] == OPSGENIE_KEY


def test_the_kind_cannot_change(api):
    answer = api.post(CHANNELS, body_of("pagerduty")).json()
    response = api.patch(f"{CHANNELS}{answer['id']}/", {"kind": "opsgenie"})
    assert response.status_code == 400
    assert Channel.objects.get(id=answer["id"]).config == {"routing_key": ROUTING_KEY}
