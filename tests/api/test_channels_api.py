"""/api/tocsin/v1/channels/: CRUD per kind, secrets shown once, the outbound URL guard and header
parsing of the dashboard form, deleting a channel in use, permissions and bad input."""

import pytest

from apps.escalation.models import EscalationPolicy, EscalationStep
from apps.notifications.models import Channel

PUBLIC_URL = "https://93.184.216.34/hooks/T000/B000/XXXXsecret"  # an address literal: no DNS


@pytest.fixture(autouse=True)
def _guard_on(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = settings.OUTBOUND_ALLOW_LOOPBACK = False


WEBHOOK = {
    "name": "Receiver",
    "kind": "webhook",
    "url": PUBLIC_URL,
    "headers": {"Authorization": "Bearer hunter2-header"},
}


def test_webhook_secret_is_shown_on_create_only(api, team):
    response = api.post("/api/tocsin/v1/channels/", WEBHOOK)
    assert response.status_code == 201, response.json()
    body = response.json()
    channel = Channel.objects.get(id=body["id"])
    assert channel.team == team and channel.kind == "webhook"
    assert channel.config == {
        "url": PUBLIC_URL,
        "headers": {"Authorization": "Bearer hunter2-header"},
    }
    assert body["secret"] == channel.secret and len(channel.secret) >= 40
    assert body["header_names"] == ["Authorization"]
    assert "hunter2-header" not in response.content.decode()

    for read in (
        api.get(f"/api/tocsin/v1/channels/{channel.id}/"),
        api.get("/api/tocsin/v1/channels/"),
    ):
        text = read.content.decode()
        assert read.status_code == 200
        assert channel.secret not in text and "hunter2-header" not in text
    detail = api.get(f"/api/tocsin/v1/channels/{channel.id}/").json()
    assert "secret" not in detail
    assert detail["secret_hint"] == f"…{channel.secret[-4:]}"
    assert detail["url"] == PUBLIC_URL  # a read-write key may change it, so may read it


def test_rotate_secret_returns_the_new_one_once(api, team):
    created = api.post("/api/tocsin/v1/channels/", WEBHOOK).json()
    response = api.post(f"/api/tocsin/v1/channels/{created['id']}/rotate-secret/")
    assert response.status_code == 200
    channel = Channel.objects.get(id=created["id"])
    assert response.json()["secret"] == channel.secret != created["secret"]
    email = api.post(
        "/api/tocsin/v1/channels/", {"name": "Mail", "kind": "email", "address": "ops@example.com"}
    ).json()
    assert email["secret"] is None
    assert api.post(f"/api/tocsin/v1/channels/{email['id']}/rotate-secret/").status_code == 409


def test_ntfy_token_is_write_only_and_kept_unless_cleared(api, team):
    body = {
        "name": "Phone",
        "kind": "ntfy",
        "url": "https://93.184.216.34/alerts",
        "token": "tk_s3cr3t",
    }
    response = api.post("/api/tocsin/v1/channels/", body)
    assert response.status_code == 201, response.json()
    assert "tk_s3cr3t" not in response.content.decode()
    assert response.json()["has_token"] is True
    url = f"/api/tocsin/v1/channels/{response.json()['id']}/"

    renamed = api.put(url, {"name": "Phones", "kind": "ntfy", "url": body["url"]})
    assert renamed.status_code == 200, renamed.json()
    channel = Channel.objects.get(id=response.json()["id"])
    assert channel.name == "Phones" and channel.config["token"] == "tk_s3cr3t"

    cleared = api.patch(url, {"token": ""})
    assert cleared.json()["has_token"] is False
    channel.refresh_from_db()
    assert "token" not in channel.config


def test_read_only_key_sees_only_the_urls_host(api, ro_api, team):
    created = api.post("/api/tocsin/v1/channels/", WEBHOOK).json()
    seen = ro_api.get(f"/api/tocsin/v1/channels/{created['id']}/").json()
    assert seen["url"] == "https://93.184.216.34/…"
    assert PUBLIC_URL not in ro_api.get("/api/tocsin/v1/channels/").content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://0x7f000001/hook",
        "ftp://93.184.216.34/hook",
        "file:///etc/passwd",
        "https://user:pw@93.184.216.34/hook",
        "https://93.184.216.34/a b",
        "https://93.184.216.34:99999/hook",
        "https://93.184.216.34/" + "a" * 2100,
    ],
    ids=[
        "loopback",
        "private",
        "metadata",
        "ipv6-loopback",
        "hex-loopback",
        "ftp",
        "file",
        "credentials",
        "space",
        "bad-port",
        "too-long",
    ],
)
def test_outbound_guard_refuses_urls_as_the_form_does(api, team, url):
    for kind in ("webhook", "slack", "ntfy"):
        response = api.post(
            "/api/tocsin/v1/channels/", {"name": f"x-{kind}", "kind": kind, "url": url}
        )
        assert response.status_code == 400, (kind, response.json())
        assert "url" in response.json()["fields"]
    assert not Channel.objects.exists()


def test_outbound_guard_applies_to_updates_too(api, team):
    created = api.post("/api/tocsin/v1/channels/", WEBHOOK).json()
    response = api.patch(f"/api/tocsin/v1/channels/{created['id']}/", {"url": "http://127.0.0.1/"})
    assert response.status_code == 400 and "url" in response.json()["fields"]
    assert Channel.objects.get(id=created["id"]).config["url"] == PUBLIC_URL


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "b\r\nX-Injected: 1"},
        {"X-A": "b\u2028X-Injected: 1"},
        {"X-A:B": "c"},
        {"Host": "evil.example"},
        {"X-Tocsin-Signature": "forged"},
        {"Bad Name": "v"},
        {"X-A": "caf\u00e9"},
        {f"X-{n}": "v" for n in range(21)},
        {"X-A": 5},
        ["X-A: b"],
    ],
    ids=[
        "crlf",
        "unicode-line-separator",
        "colon-in-name",
        "framing-header",
        "own-signature",
        "space-in-name",
        "non-ascii",
        "too-many",
        "number-value",
        "not-an-object",
    ],
)
def test_hostile_headers_are_refused(api, team, headers):
    response = api.post("/api/tocsin/v1/channels/", {**WEBHOOK, "headers": headers})
    assert response.status_code == 400, response.json()
    assert "headers" in response.json()["fields"]
    assert not Channel.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "Mail", "kind": "email", "address": "not-an-address"}, "address"),
        ({"name": "Mail", "kind": "email"}, "address"),
        ({"name": "Mail", "kind": "email", "address": "a@example.com", "url": PUBLIC_URL}, "url"),
        ({"name": "Hook", "kind": "webhook"}, "url"),
        ({"name": "Hook", "kind": "slack", "url": PUBLIC_URL, "token": "t"}, "token"),
        ({"name": "Hook", "kind": "pigeon", "url": PUBLIC_URL}, "kind"),
        ({"name": " ", "kind": "email", "address": "a@example.com"}, "name"),
        ({"kind": "email", "address": "a@example.com"}, "name"),
        ({"name": 7, "kind": "email", "address": "a@example.com"}, "name"),
        ({"name": "N", "kind": "ntfy", "url": PUBLIC_URL, "token": "has space"}, "token"),
        ({"name": "N", "kind": "email", "address": "a@example.com", "secret": "x"}, "secret"),
        (
            {"name": "N", "kind": "email", "address": "a@example.com", "is_enabled": "no"},
            "is_enabled",
        ),
    ],
    ids=[
        "bad-address",
        "no-address",
        "url-on-email",
        "no-url",
        "token-on-slack",
        "unknown-kind",
        "blank-name",
        "no-name",
        "name-not-text",
        "token-with-space",
        "secret-is-not-typed",
        "boolean-as-text",
    ],
)
def test_create_refuses_bad_input_with_field_details(api, team, body, field):
    response = api.post("/api/tocsin/v1/channels/", body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not Channel.objects.exists()


def test_names_are_unique_and_the_kind_cannot_change(api, team):
    mail = {"name": "Mail", "kind": "email", "address": "ops@example.com"}
    created = api.post("/api/tocsin/v1/channels/", mail).json()
    clash = api.post("/api/tocsin/v1/channels/", mail)
    assert clash.status_code == 400 and "name" in clash.json()["fields"]
    change = api.patch(f"/api/tocsin/v1/channels/{created['id']}/", {"kind": "webhook"})
    assert change.status_code == 400 and "kind" in change.json()["fields"]
    disabled = api.patch(f"/api/tocsin/v1/channels/{created['id']}/", {"is_enabled": False})
    assert disabled.status_code == 200 and disabled.json()["is_enabled"] is False
    assert Channel.objects.get().kind == "email"


def test_deleting_a_channel_a_policy_notifies_needs_force(api, team):
    created = api.post("/api/tocsin/v1/channels/", WEBHOOK).json()
    policy = EscalationPolicy.objects.create(team=team, name="Primary")
    EscalationStep.objects.create(policy=policy, targets=[{"kind": "channel", "id": created["id"]}])
    url = f"/api/tocsin/v1/channels/{created['id']}/"
    refused = api.delete(url)
    assert refused.status_code == 409 and "Primary" in refused.json()["error"]
    assert api.delete(f"{url}?force=true").status_code == 204
    assert not Channel.objects.exists()


def test_read_only_key_reads_but_cannot_write(api, ro_api, team):
    created = api.post("/api/tocsin/v1/channels/", WEBHOOK).json()
    url = f"/api/tocsin/v1/channels/{created['id']}/"
    assert ro_api.get(url).status_code == 200
    assert ro_api.post("/api/tocsin/v1/channels/", {**WEBHOOK, "name": "Other"}).status_code == 403
    assert ro_api.patch(url, {"name": "Renamed"}).status_code == 403
    assert ro_api.put(url, {**WEBHOOK, "name": "Renamed"}).status_code == 403
    assert ro_api.post(f"{url}rotate-secret/").status_code == 403
    assert ro_api.delete(url).status_code == 403
    channel = Channel.objects.get()
    assert channel.name == "Receiver" and channel.secret == created["secret"]


def test_other_teams_key_gets_404_and_no_key_401(api, other_api, anon_api, team):
    created = api.post("/api/tocsin/v1/channels/", WEBHOOK).json()
    url = f"/api/tocsin/v1/channels/{created['id']}/"
    assert other_api.get(url).status_code == 404
    assert other_api.patch(url, {"name": "Mine"}).status_code == 404
    assert other_api.post(f"{url}rotate-secret/").status_code == 404
    assert other_api.delete(f"{url}?force=true").status_code == 404
    assert other_api.get("/api/tocsin/v1/channels/").json()["count"] == 0
    assert anon_api.get(url).status_code == 401
    assert anon_api.post("/api/tocsin/v1/channels/", WEBHOOK).status_code == 401
    channel = Channel.objects.get()
    assert channel.name == "Receiver" and channel.secret == created["secret"]
