"""PagerDuty, Opsgenie, Telegram, Discord, Microsoft Teams, Pushover and Twilio SMS channels,
each against a local fake of its provider (a real HTTP server in a thread) that checks the
request as the provider documents it: endpoint, headers, authentication, body. The incident
tools follow the incident through trigger, acknowledge and resolve; every kind goes through
the outbox, honours 429 + Retry-After (walked with injected time), retries 5xx, fails a
permanent 4xx at once and reports it, and answers "send a test"."""

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.urls import reverse

from apps.clock import database_now
from apps.incidents.services import acknowledge_incident, resolve_incident
from apps.notifications.delivery import deliver, due_delivery_ids
from apps.notifications.flush import flush_due_groups
from apps.notifications.models import Delivery, Notification
from apps.notifications.testing import send_test_notification
from tests.factories import CheckFactory

from .conftest import beat_until, fail_a_run, make_channel, tell, to_channel
from .providers import (
    BOT_TOKEN,
    CHAT_ID,
    FROM_NUMBER,
    KINDS,
    OPSGENIE_KEY,
    PUSHOVER_APP,
    PUSHOVER_USER,
    ROUTING_KEY,
    SECRETS,
    TO_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    alert_path,
    point_providers_at,
    settings_of,
)
from .receiver import Answer

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
OUTPUT = b"".join(b"copied file %d\n" % n for n in range(1, 40)) + b"rsync: disk quota exceeded\n"
SITE = "https://tocsin.example"


def human(moment) -> str:
    return f"{moment:%-d %b %Y, %H:%M:%S} UTC"


def send_due(now, jitter=0.0) -> list[str]:
    flush_due_groups(now=now)
    return [deliver(delivery_id=i, now=now, jitter=jitter) for i in due_delivery_ids(now=now)]


def form(request) -> dict[str, str]:
    return {k: v for k, (v,) in parse_qs(request.body.decode(), strict_parsing=True).items()}


@pytest.fixture
def providers(settings, receiver):
    point_providers_at(settings, receiver)
    return receiver


@pytest.fixture
def channel_of(team, providers):
    def make(kind, name=None):
        return make_channel(team, kind, name=name, **settings_of(kind, providers.base_url))

    return make


@pytest.fixture
def incident(check, t0):
    check.tags = "backup nightly"
    check.environment = "production"
    check.save()
    incident = fail_a_run(check, t0, exit_status=23, body=OUTPUT, started_before=95 * SECOND)
    incident.severity = "critical"
    incident.save()
    return incident


def incident_url(incident) -> str:
    return f"{SITE}/incidents/{incident.id}/"


# --- the alert, as each provider documents its request -------------------------------------


def check_pagerduty(request, incident, check, t0):
    assert request.headers["Content-Type"] == "application/json"
    event = request.json()
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == f"tocsin-incident-{incident.id}"
    payload = event["payload"]
    assert payload["summary"].startswith("nightly-backup (production) is DOWN: Failure signal")
    assert payload["source"] == "nightly-backup (production)"
    assert payload["severity"] == "critical"
    assert payload["component"] == "nightly-backup"
    assert payload["group"] == "production"
    assert payload["class"] == "Failure signal"
    assert payload["timestamp"] == incident.opened_at.isoformat()
    details = payload["custom_details"]
    assert details["Exit status"] == "23"
    assert details["Last ping at"] == human(t0)
    assert details["Run duration"] == "95 s"
    assert details["Tags"] == "backup, nightly"
    assert details["Last lines of the output"].endswith("rsync: disk quota exceeded")
    links = {link["text"]: link["href"] for link in event["links"]}
    assert links["Incident in Tocsin"] == incident_url(incident)
    assert links["Check nightly-backup (production) in Tocsin"] == f"{SITE}/checks/{check.id}/"
    assert links["Acknowledge in Tocsin"].startswith(f"{SITE}/a/")
    assert links["Resolve in Tocsin"].startswith(f"{SITE}/a/")
    assert (event["client"], event["client_url"]) == ("Tocsin", incident_url(incident))


def check_opsgenie(request, incident, check, t0):
    assert request.headers["Authorization"] == f"GenieKey {OPSGENIE_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    alert = request.json()
    assert alert["message"] == "nightly-backup (production) is DOWN"
    assert alert["alias"] == f"tocsin-incident-{incident.id}"
    assert alert["priority"] == "P1"
    assert alert["tags"] == ["tocsin", "backup", "nightly", "production"]
    assert alert["entity"] == "nightly-backup (production)"
    assert alert["source"] == "Tocsin"
    assert alert["details"]["Exit status"] == "23"
    assert alert["details"]["Incident"] == incident_url(incident)
    assert f"Last ping at: {human(t0)}" in alert["description"]
    assert "rsync: disk quota exceeded" in alert["description"]
    assert f"Acknowledge: {SITE}/a/" in alert["description"]


def check_telegram(request, incident, check, t0):
    assert request.headers["Content-Type"] == "application/json"
    message = request.json()
    assert message["chat_id"] == int(CHAT_ID)
    assert message["parse_mode"] == "HTML"
    assert message["link_preview_options"] == {"is_disabled": True}
    text = message["text"]
    assert text.startswith("<b>[Tocsin] DOWN nightly-backup (production)</b>")
    for fact in [
        "<b>Exit status:</b> 23",
        f"<b>Last ping at:</b> {human(t0)}",
        "<b>Severity:</b> critical",
        "<pre>",
        "rsync: disk quota exceeded",
        f'<a href="{incident_url(incident)}">Incident</a>',
        f'<a href="{SITE}/checks/{check.id}/">Check</a>',
        f'<a href="{SITE}/a/',
        ">Silence 1 h</a>",
    ]:
        assert fact in text, fact
    assert len(text) <= 4096


def check_discord(request, incident, check, t0):
    message = request.json()
    assert message["username"] == "Tocsin"
    assert message["allowed_mentions"] == {"parse": []}
    assert message["content"] == r"DOWN nightly\-backup \(production\)"
    (embed,) = message["embeds"]
    assert embed["title"] == "nightly-backup (production) is DOWN"
    assert embed["url"] == incident_url(incident)
    assert embed["timestamp"] == incident.opened_at.isoformat()
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Exit status"] == "23"
    assert fields["Last ping at"] == human(t0)
    assert "rsync: disk quota exceeded" in embed["description"]
    assert f"[Acknowledge]({SITE}/a/" in embed["description"]
    assert f"[Incident]({incident_url(incident)})" in embed["description"]


def check_teams(request, incident, check, t0):
    message = request.json()
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    texts = [block["text"] for block in card["body"] if block["type"] == "TextBlock"]
    assert texts[0] == "[Tocsin] DOWN nightly-backup (production)"
    assert "nightly-backup (production) is DOWN" in texts
    (facts,) = [block["facts"] for block in card["body"] if block["type"] == "FactSet"]
    assert {"title": "Exit status", "value": "23"} in facts
    assert {"title": "Last ping at", "value": human(t0)} in facts
    (actions,) = [block["actions"] for block in card["body"] if block["type"] == "ActionSet"]
    titles = {action["title"]: action["url"] for action in actions}
    assert titles["Incident"] == incident_url(incident)
    assert titles["Acknowledge"].startswith(f"{SITE}/a/")
    assert {action["type"] for action in actions} == {"Action.OpenUrl"}


def check_pushover(request, incident, check, t0):
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    fields = form(request)
    assert (fields["token"], fields["user"]) == (PUSHOVER_APP, PUSHOVER_USER)
    assert fields["title"] == "[Tocsin] DOWN nightly-backup (production)"
    # Critical: an emergency, repeated until acknowledged, tagged for cancelling.
    assert (fields["priority"], fields["retry"], fields["expire"]) == ("2", "60", "3600")
    assert fields["tags"] == f"tocsin-incident-{incident.id}"
    assert (fields["url"], fields["url_title"]) == (incident_url(incident), "Open the incident")
    assert fields["html"] == "1"
    assert len(fields["message"]) <= 1024
    assert "<b>Exit status:</b> 23" in fields["message"]
    assert f'<a href="{SITE}/a/' in fields["message"]
    assert ">Acknowledge</a>" in fields["message"]


def check_sms(request, incident, check, t0):
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    )
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(request) == {
        "To": TO_NUMBER,
        "From": FROM_NUMBER,
        "Body": "Tocsin: nightly-backup (production) is DOWN (Failure signal, critical) "
        + incident_url(incident),
    }


CHECKS = {
    "pagerduty": check_pagerduty,
    "opsgenie": check_opsgenie,
    "telegram": check_telegram,
    "discord": check_discord,
    "teams": check_teams,
    "pushover": check_pushover,
    "sms": check_sms,
}


@pytest.mark.parametrize("kind", KINDS)
def test_an_alert_reaches_the_provider_as_documented(
    kind, providers, channel_of, incident, check, t0
):
    channel = channel_of(kind)
    now = t0 + MINUTE
    assert tell(incident, to_channel(channel), now=now) == 1
    assert send_due(now) == [f"delivery {Delivery.objects.get().id}: sent"]
    (request,) = providers.requests
    assert request.path == alert_path(kind)
    assert request.headers["User-Agent"] == "Tocsin-Notifier/1"
    CHECKS[kind](request, incident, check, t0)
    row = Notification.objects.get(channel=channel)
    assert (row.status, row.attempts) == ("sent", 1)


# --- incident tools follow the incident ----------------------------------------------------


def test_pagerduty_triggers_acknowledges_and_resolves_one_alert(
    providers, channel_of, incident, owner, t0
):
    channel = channel_of("pagerduty")
    tell(incident, to_channel(channel), now=t0 + MINUTE)
    send_due(t0 + MINUTE)
    # A reminder later is one more trigger with the same key: PagerDuty folds it in.
    tell(incident, to_channel(channel), now=t0 + 5 * MINUTE, event="reminder", round=1)
    send_due(t0 + 5 * MINUTE)
    acknowledge_incident(incident_id=incident.id, user=owner, now=t0 + 10 * MINUTE)
    send_due(t0 + 10 * MINUTE)
    resolve_incident(incident_id=incident.id, user=owner, now=t0 + 20 * MINUTE)
    send_due(t0 + 20 * MINUTE)

    events = [request.json() for request in providers.requests]
    assert [e["event_action"] for e in events] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {f"tocsin-incident-{incident.id}"}
    assert {r.path for r in providers.requests} == {"/pd/v2/enqueue"}
    # Acknowledge and resolve carry only what the Events API reads for them.
    assert events[2] == {
        "routing_key": ROUTING_KEY,
        "event_action": "acknowledge",
        "dedup_key": f"tocsin-incident-{incident.id}",
    }
    assert events[3] == {**events[2], "event_action": "resolve"}
    assert Delivery.objects.filter(channel=channel, status="sent").count() == 4


def test_opsgenie_creates_acknowledges_and_closes_by_alias_in_its_region(
    providers, team, channel_of, incident, owner, t0
):
    eu = channel_of("opsgenie")
    us = make_channel(team, "opsgenie", name="us", api_key=OPSGENIE_KEY, region="us")
    tell(incident, to_channel(eu), to_channel(us), now=t0 + MINUTE)
    send_due(t0 + MINUTE)
    acknowledge_incident(incident_id=incident.id, user=owner, now=t0 + 10 * MINUTE)
    send_due(t0 + 10 * MINUTE)
    resolve_incident(incident_id=incident.id, user=owner, now=t0 + 20 * MINUTE)
    send_due(t0 + 20 * MINUTE)

    alias = f"tocsin-incident-{incident.id}"
    for region in ("eu", "us"):
        requests = [r for r in providers.requests if r.path.startswith(f"/og-{region}/")]
        assert [r.path for r in requests] == [
            f"/og-{region}/v2/alerts",
            f"/og-{region}/v2/alerts/{alias}/acknowledge?identifierType=alias",
            f"/og-{region}/v2/alerts/{alias}/close?identifierType=alias",
        ]
        assert {r.headers["Authorization"] for r in requests} == {f"GenieKey {OPSGENIE_KEY}"}
        assert requests[0].json()["alias"] == alias
        assert requests[1].json() == {
            "user": "alice",
            "source": "Tocsin",
            "note": f"Acknowledged in Tocsin by alice. {incident_url(incident)}",
        }
        assert requests[2].json()["user"] == "alice"
        assert requests[2].json()["note"].startswith("Resolved in Tocsin")


def test_pushover_cancels_the_emergency_repeats_when_acknowledged_in_tocsin(
    providers, channel_of, incident, owner, t0
):
    channel = channel_of("pushover")
    tell(incident, to_channel(channel), now=t0 + MINUTE)
    send_due(t0 + MINUTE)
    acknowledge_incident(incident_id=incident.id, user=owner, now=t0 + 10 * MINUTE)
    send_due(t0 + 10 * MINUTE)
    alert, cancel, follow_up = providers.requests
    assert form(alert)["priority"] == "2"
    assert cancel.path == f"/po/1/receipts/cancel_by_tag/tocsin-incident-{incident.id}.json"
    assert form(cancel) == {"token": PUSHOVER_APP}
    fields = form(follow_up)
    assert follow_up.path == "/po/1/messages.json"
    assert fields["priority"] == "0"
    assert "retry" not in fields and "tags" not in fields
    assert fields["title"] == "[Tocsin] ACKNOWLEDGED nightly-backup (production)"
    assert "<b>Acknowledged by:</b> alice" in fields["message"]


def test_incident_tools_get_one_message_per_incident_where_chats_get_one_for_the_burst(
    providers, team, channel_of, t0
):
    pagerduty, discord = channel_of("pagerduty"), channel_of("discord")
    incidents = [
        fail_a_run(CheckFactory(team=team, name=f"job-{n}"), t0 + n * SECOND) for n in range(3)
    ]
    now = t0 + MINUTE
    for incident in incidents:
        tell(incident, to_channel(pagerduty), to_channel(discord), now=now)
    send_due(now)
    assert Delivery.objects.filter(channel=pagerduty).count() == 3
    assert Delivery.objects.filter(channel=discord).count() == 1
    keys = sorted(r.json()["dedup_key"] for r in providers.requests if r.path.startswith("/pd/"))
    assert keys == sorted(f"tocsin-incident-{i.id}" for i in incidents)
    (chat,) = [r.json() for r in providers.requests if r.path.startswith("/api/webhooks/")]
    assert len(chat["embeds"]) == 3


# --- the provider's error answers ------------------------------------------------------------

# Each provider's documented answer to a request it will never take.
REFUSALS = {
    "pagerduty": Answer(
        400,
        body=b'{"status":"invalid event","message":"Event object is invalid",'
        b'"errors":["Length of \'routing_key\' is incorrect"]}',
    ),
    "opsgenie": Answer(401, body=b'{"message":"Key format is not valid!","took":0.001}'),
    "telegram": Answer(
        400, body=b'{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}'
    ),
    "discord": Answer(404, body=b'{"message": "Unknown Webhook", "code": 10015}'),
    "teams": Answer(400, body=b'{"error":{"code":"TriggerInputSchemaMismatch"}}'),
    "pushover": Answer(
        400, body=b'{"user":"invalid","errors":["user identifier is invalid"],"status":0}'
    ),
    "sms": Answer(
        400, body=b'{"code": 21211, "message": "The \'To\' number is not a valid phone number."}'
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_429_with_retry_after_is_retried_after_that_delay(
    kind, providers, channel_of, incident, t0
):
    providers.script = [Answer(429, {"Retry-After": "120"}), 200]
    channel = channel_of(kind)
    now = t0 + MINUTE
    tell(incident, to_channel(channel), now=now)
    (first,) = send_due(now)
    delivery = Delivery.objects.get()
    assert first == f"delivery {delivery.id}: retry at {(now + 120 * SECOND).isoformat()}"
    assert (delivery.status, delivery.response_status) == ("pending", 429)
    assert send_due(now + 119 * SECOND) == []
    assert send_due(now + 120 * SECOND) == [f"delivery {delivery.id}: sent"]
    assert len(providers.requests) == 2
    assert {r.path for r in providers.requests} == {alert_path(kind)}


@pytest.mark.parametrize("kind", KINDS)
def test_a_5xx_is_retried_with_backoff(kind, providers, channel_of, incident, t0, settings):
    settings.NOTIFICATION_RETRY_BASE = timedelta(seconds=10)
    providers.script = [503, 502, 200]
    channel = channel_of(kind)
    now = t0 + MINUTE
    tell(incident, to_channel(channel), now=now)
    assert send_due(now)[0].endswith(f"retry at {(now + 5 * SECOND).isoformat()}")
    assert send_due(now + 5 * SECOND)[0].endswith(f"retry at {(now + 15 * SECOND).isoformat()}")
    assert send_due(now + 15 * SECOND)[0].endswith(": sent")
    delivery = Delivery.objects.get(channel=channel)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 3, "")
    assert len(providers.requests) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_permanent_refusal_fails_at_once_and_is_reported(
    kind, providers, channel_of, incident, owner, t0
):
    refusal = REFUSALS[kind]
    providers.script = [refusal]
    channel = channel_of(kind, name=f"our {kind}")
    now = t0 + MINUTE
    tell(incident, to_channel(channel), now=now)
    assert send_due(now)[0].endswith("failed for good")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert delivery.response_status == refusal.status
    # The provider's own words reach the channel's page and the report.
    assert refusal.body.decode()[:60] in delivery.last_error
    assert len(providers.requests) == 1
    (report,) = [m for m in mail.outbox if "are failing" in m.subject]
    assert report.subject == f"[Tocsin] Notifications to our {kind} are failing"
    assert report.to == [owner.email]
    assert f"HTTP {refusal.status}" in report.body
    for secret in SECRETS[kind]:
        assert secret not in report.body  # the report never quotes a credential
        assert secret not in delivery.last_error


@pytest.mark.parametrize("kind", KINDS)
def test_the_outbound_guard_refuses_a_provider_on_a_private_address(
    kind, providers, channel_of, incident, t0, settings
):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    channel = channel_of(kind)
    tell(incident, to_channel(channel), now=t0)
    send_due(t0)
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    assert "private or reserved address" in delivery.last_error
    assert providers.requests == []


# --- send a test -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_send_a_test_works_for_every_kind(kind, providers, channel_of, team, client, owner):
    channel = channel_of(kind)
    client.force_login(owner)
    response = client.post(
        reverse("notifications:channel-test", args=[channel.id]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "Test notification delivered" in response.content.decode()
    delivery = Delivery.objects.get(channel=channel, is_test=True)
    assert delivery.status == "sent"
    paths = [request.path for request in providers.requests]
    if kind == "pagerduty":
        # A test opens an info alert and resolves it at once, under a key of its own.
        trigger, resolve = (request.json() for request in providers.requests)
        assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
        assert trigger["payload"]["severity"] == "info"
        assert trigger["dedup_key"] == resolve["dedup_key"] == f"tocsin-test-{delivery.id}"
        assert "Test notification from Tocsin for Ops" in trigger["payload"]["summary"]
    elif kind == "opsgenie":
        alias = f"tocsin-test-{delivery.id}"
        assert paths == ["/og-eu/v2/alerts", f"/og-eu/v2/alerts/{alias}/close?identifierType=alias"]
        assert providers.requests[0].json()["priority"] == "P5"
    else:
        (request,) = providers.requests
        assert request.path == alert_path(kind)
        assert "Ops" in request.body.decode()


def test_a_failed_test_shows_the_providers_answer(providers, channel_of, team, t0):
    providers.script = [REFUSALS["telegram"]]
    delivery = send_test_notification(channel=channel_of("telegram"), now=t0)
    assert delivery.status == "failed"
    assert "chat not found" in delivery.last_error
    assert BOT_TOKEN not in delivery.last_error


# --- follow-ups and herds in the messaging kinds ---------------------------------------------

MESSAGING = ["telegram", "discord", "teams", "pushover", "sms"]


def readable(kind: str, request) -> str:
    """The text a person sees, whatever the wire format."""
    if kind in ("pushover", "sms"):
        return " ".join(form(request).values())
    return json.dumps(request.json(), ensure_ascii=False)


@pytest.mark.parametrize("kind", MESSAGING)
def test_messaging_kinds_hear_of_the_acknowledgment_and_the_recovery(
    kind, providers, channel_of, incident, owner, t0
):
    channel = channel_of(kind)
    tell(incident, to_channel(channel), now=t0 + MINUTE)
    send_due(t0 + MINUTE)
    acknowledge_incident(incident_id=incident.id, user=owner, now=t0 + 10 * MINUTE)
    send_due(t0 + 10 * MINUTE)
    resolve_incident(incident_id=incident.id, user=owner, now=t0 + 20 * MINUTE)
    send_due(t0 + 20 * MINUTE)
    messages = [r for r in providers.requests if r.path == alert_path(kind)]
    assert len(messages) == 3
    down, acknowledged, resolved = (readable(kind, r) for r in messages)
    assert "nightly-backup (production) is DOWN" in down
    assert "nightly-backup (production) was acknowledged by alice" in acknowledged
    assert "RESOLVED" in resolved
    for text in (acknowledged, resolved):
        assert "/a/" not in text  # no action links once acknowledged or resolved
        assert incident_url(incident) in text


@pytest.mark.parametrize("kind", MESSAGING)
def test_a_herd_in_one_message_stays_within_the_providers_limits(
    kind, providers, team, channel_of, t0
):
    channel = channel_of(kind)
    names = [f"job-{n:02d}-" + "long-name-" * 8 for n in range(40)]
    incidents = [fail_a_run(CheckFactory(team=team, name=name), t0, body=OUTPUT) for name in names]
    now = t0 + MINUTE
    for incident in incidents:
        tell(incident, to_channel(channel), now=now)
    assert send_due(now) == [f"delivery {Delivery.objects.get().id}: sent"]
    (request,) = providers.requests
    if kind == "telegram":
        text = request.json()["text"]
        assert len(text) <= 4096
        assert text.startswith("<b>[Tocsin] 40 checks down")
        assert "more: see https://tocsin.example/incidents/" in text
    elif kind == "discord":
        message = request.json()
        assert len(message["content"]) <= 2000 and len(message["embeds"]) <= 10
        size = sum(
            len(e["title"])
            + len(e["description"])
            + sum(len(f["name"]) + len(f["value"]) for f in e["fields"])
            for e in message["embeds"]
        )
        assert size <= 6000
        assert f"…and {40 - len(message['embeds'])} more" in message["content"]
    elif kind == "teams":
        body = request.json()["attachments"][0]["content"]["body"]
        detailed = sum(block["type"] == "FactSet" for block in body)
        assert 1 <= detailed <= 10
        assert body[-1]["text"] == f"…and {40 - detailed} more (see the incidents page)."
        assert len(request.body) < 28_000
    elif kind == "pushover":
        fields = form(request)
        assert len(fields["message"]) <= 1024 and len(fields["title"]) <= 250
        assert fields["message"].endswith('">All incidents</a>')
    else:
        body = form(request)["Body"]
        assert len(body) <= 320
        assert body.startswith("Tocsin: 40 checks down")
        assert body.endswith(" https://tocsin.example/incidents/")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_carries_pagerduty_from_trigger_to_resolve(
    celery_worker, providers, channel_of, check, owner
):
    """Across the queue: the acknowledgment and the resolution in Tocsin become outbox rows in
    their own transactions, and the worker's delivery runs take them to PagerDuty."""
    channel = channel_of("pagerduty")

    def actions():
        return [r.json()["event_action"] for r in providers.requests]

    with celery_worker.exclusive():
        now = database_now()
        incident = fail_a_run(check, now - 2 * SECOND)
        tell(incident, to_channel(channel), now=now)

    def all_sent(count):
        # The provider has the request before the worker records its answer: wait for both.
        # (The team's owner gets emails of their own: only the channel's deliveries count.)
        statuses = list(Delivery.objects.filter(channel=channel).values_list("status", flat=True))
        return len(actions()) == count and statuses == ["sent"] * count

    beat_until(celery_worker, lambda: all_sent(1), what="the trigger sent", timeout=90)
    with celery_worker.exclusive():
        acknowledge_incident(incident_id=incident.id, user=owner, now=database_now())
    beat_until(celery_worker, lambda: all_sent(2), what="the acknowledgment sent", timeout=90)
    with celery_worker.exclusive():
        resolve_incident(incident_id=incident.id, user=owner, now=database_now())
    beat_until(celery_worker, lambda: all_sent(3), what="the resolution sent", timeout=90)
    assert actions() == ["trigger", "acknowledge", "resolve"]
    assert {r.json()["dedup_key"] for r in providers.requests} == {f"tocsin-incident-{incident.id}"}
