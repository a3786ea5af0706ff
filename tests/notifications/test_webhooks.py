"""Webhook, Slack and ntfy deliveries received by a real HTTP server in a thread: the HMAC
signature verified as a receiver would, every field of the context in every payload, retries
walked with injected time, and a dead receiver that never delays the others."""

import hashlib
import hmac
import time
from datetime import timedelta
from email.header import decode_header, make_header

import pytest
from django.core import mail
from django.db import transaction

from apps.clock import database_now
from apps.incidents.models import IncidentEvent
from apps.incidents.tokens import read_action_token
from apps.notifications.delivery import deliver, due_delivery_ids
from apps.notifications.flush import flush_due_groups
from apps.notifications.models import Delivery, Notification
from apps.notifications.tasks import flush_notification_groups_task, retry_due_deliveries_task

from .conftest import beat_until, fail_a_run, make_channel, tell, to_channel
from .receiver import HANG, receiving

SECOND, MINUTE, HOUR = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)
ACTIONS = ["acknowledge", "resolve", "silence_1h", "silence_4h", "silence_24h", "escalate"]
OUTPUT = b"".join(b"copied file %d\n" % n for n in range(1, 60)) + b"rsync: disk quota exceeded\n"


def reports():
    return [m for m in mail.outbox if "are failing" in m.subject]


def verify_signature(secret: str, request) -> bool:
    """What a receiver does: recompute HMAC-SHA256 over timestamp "." body, compare in constant
    time."""
    timestamp = request.headers["X-Tocsin-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    return hmac.compare_digest(
        request.headers["X-Tocsin-Signature"], f"sha256={expected.hexdigest()}"
    )


def send_due(now, jitter=0.0) -> list[str]:
    """The beat's two jobs at `now`: flush due groups, then attempt every due delivery."""
    flush_due_groups(now=now)
    return [deliver(delivery_id=i, now=now, jitter=jitter) for i in due_delivery_ids(now=now)]


@pytest.fixture
def failed_incident(check, t0):
    check.tags = "backup nightly"
    check.environment = "production"
    check.save()
    return fail_a_run(check, t0, exit_status=23, body=OUTPUT, started_before=timedelta(seconds=95))


def assert_action_links(links: dict, incident, channel):
    for action in ACTIONS:
        prefix = "https://tocsin.example/a/"
        assert links[action].startswith(prefix), action
        claim = read_action_token(links[action].removeprefix(prefix).rstrip("/"))
        assert (claim.incident_id, claim.action, claim.channel_id) == (
            incident.id,
            action,
            channel.id,
        )


# --- generic webhook ----------------------------------------------------------------------


def test_webhook_is_signed_and_carries_the_whole_context(
    receiver, team, check, failed_incident, t0
):
    channel = make_channel(
        team,
        "webhook",
        name="ops-hook",
        url=receiver.url("/hook?src=tocsin"),
        headers={"Authorization": "Bearer s3cret", "X-Env": "prod"},
    )
    now = t0 + MINUTE
    assert tell(failed_incident, to_channel(channel), now=now) == 1
    assert send_due(now) == [f"delivery {Delivery.objects.get().id}: sent"]

    (request,) = receiver.requests
    assert request.path == "/hook?src=tocsin"
    assert verify_signature(channel.secret, request)
    assert request.headers["X-Tocsin-Timestamp"] == str(int(now.timestamp()))
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["X-Env"] == "prod"
    assert request.headers["X-Tocsin-Delivery"] == str(Delivery.objects.get().id)
    # A body changed on the way, or another secret, does not verify.
    tampered = type(request)(request.path, request.headers, request.body.replace(b"23", b"24"))
    assert not verify_signature(channel.secret, tampered)
    assert not verify_signature("another secret", request)

    payload = request.json()
    assert payload["type"] == "notification"
    assert payload["summary"] == "DOWN nightly-backup (production)"
    assert payload["count"] == 1
    (item,) = payload["incidents"]
    assert item["event"] == "down"
    assert item["check"] == {
        "id": str(check.id),
        "name": "nightly-backup",
        "environment": "production",
        "tags": ["backup", "nightly"],
        "url": f"https://tocsin.example/checks/{check.id}/",
    }
    incident = item["incident"]
    assert incident["id"] == failed_incident.id
    assert incident["kind"] == "failure_signal"
    assert incident["kind_label"] == "Failure signal"
    assert incident["severity"] == failed_incident.severity
    assert incident["state"] == "triggered"
    assert incident["url"] == f"https://tocsin.example/incidents/{failed_incident.id}/"
    assert item["exit_status"] == 23
    assert item["run_duration_seconds"] == 95
    assert item["run_id"] == failed_incident.details["run_id"]
    assert item["last_ping_at"] == t0.isoformat()
    assert item["failed_at"] == t0.isoformat()
    assert "expected_at" in item
    assert item["body_tail"].endswith("rsync: disk quota exceeded")
    assert "copied file 59" in item["body_tail"]
    assert item["links"]["check"] == f"https://tocsin.example/checks/{check.id}/"
    assert item["links"]["incident"] == incident["url"]
    assert_action_links(item["links"], failed_incident, channel)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("sent", 1, 200)
    row = Notification.objects.get(channel=channel)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, now)
    event = IncidentEvent.objects.get(incident=failed_incident, kind="notified")
    assert event.detail["via"] == "channel ops-hook"
    assert event.detail["about"] == "down"


def test_missed_heartbeat_webhook_gives_expected_and_last_ping_times(receiver, team, check, t0):
    from apps.checks.pings import PingData, record_ping
    from apps.checks.sweeper import sweep_due_checks
    from apps.incidents.models import Incident

    channel = make_channel(team, "webhook", url=receiver.url("/hook"))
    chat = make_channel(team, "slack", url=receiver.url("/chat"))
    push = make_channel(team, "ntfy", url=receiver.url("/push"))
    record_ping(ping=PingData(kind="success", method="GET"), token=check.ping_token, now=t0)
    sweep_due_checks(now=t0 + MINUTE)
    later = t0 + check.period + check.grace + HOUR
    sweep_due_checks(now=t0 + check.period + MINUTE)
    sweep_due_checks(now=later)
    incident = Incident.objects.get(owner=check)
    tell(incident, to_channel(channel), to_channel(chat), to_channel(push), now=later)
    send_due(later)
    received = {r.path: r for r in receiver.requests}
    expected_at = (t0 + check.period).isoformat()

    (item,) = received["/hook"].json()["incidents"]
    assert item["incident"]["kind"] == "missed_heartbeat"
    assert item["expected_at"] == expected_at
    assert item["last_ping_at"] == t0.isoformat()
    assert item["exit_status"] is None
    slack_text = received["/chat"].json()["text"]
    assert "Missed heartbeat: no ping came in time." in slack_text
    assert f"*Expected at:* {expected_at}" in slack_text
    assert f"*Last ping at:* {t0.isoformat()}" in slack_text
    assert "Exit status" not in slack_text
    push_body = received["/push"].body.decode()
    assert f"Expected at: {expected_at}" in push_body
    assert f"Last ping at: {t0.isoformat()}" in push_body


def test_receiver_answering_500_twice_then_200_gets_exactly_one_notification(
    receiver, team, check, failed_incident, t0, settings
):
    settings.NOTIFICATION_RETRY_BASE = timedelta(seconds=10)
    receiver.script = [500, 500, 200]
    channel = make_channel(team, "webhook", url=receiver.url())
    now = t0 + MINUTE
    tell(failed_incident, to_channel(channel), now=now)
    delivery_id = None

    (first,) = send_due(now, jitter=0.0)
    delivery = Delivery.objects.get()
    delivery_id = delivery.id
    # Equal jitter: the first retry waits between 5 and 10 s; with jitter 0, exactly 5 s.
    assert first == f"delivery {delivery_id}: retry at {(now + 5 * SECOND).isoformat()}"
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 500)
    assert delivery.next_attempt_at == now + 5 * SECOND
    assert "HTTP 500" in delivery.last_error
    # Not due yet: nothing is attempted early, even when asked.
    assert send_due(now + 4 * SECOND) == []
    assert deliver(delivery_id=delivery_id, now=now + 4 * SECOND).endswith("nothing to do")

    (second,) = send_due(now + 5 * SECOND, jitter=1.0)
    # The second retry waits 10 s (the doubled step) scaled up to the full step by jitter 1.
    assert second.endswith(f"retry at {(now + 25 * SECOND).isoformat()}")
    (third,) = send_due(now + 25 * SECOND)
    assert third == f"delivery {delivery_id}: sent"
    assert send_due(now + HOUR) == []

    assert len(receiver.requests) == 3
    assert all(verify_signature(channel.secret, r) for r in receiver.requests)
    assert len({r.body for r in receiver.requests}) <= 3  # same message, fresh link tokens
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 3, "")
    assert IncidentEvent.objects.filter(incident=failed_incident, kind="notified").count() == 1
    assert not IncidentEvent.objects.filter(kind="notify_failed").exists()


def test_a_permanent_refusal_is_not_retried_and_is_reported_once(
    receiver, team, check, owner, member, failed_incident, t0
):
    receiver.script = [404]
    channel = make_channel(team, "webhook", name="gone-hook", url=receiver.url())
    now = t0 + MINUTE
    tell(failed_incident, to_channel(channel), now=now)
    send_due(now)
    delivery = Delivery.objects.get(channel=channel)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert Notification.objects.get(channel=channel).status == "failed"
    event = IncidentEvent.objects.get(incident=failed_incident, kind="notify_failed")
    assert "HTTP 404" in event.detail["error"]
    # The team's owners and admins (not plain members) hear about it once.
    (report,) = reports()
    assert report.to == [owner.email]
    assert report.subject == "[Tocsin] Notifications to gone-hook are failing"
    assert "HTTP 404" in report.body
    assert f"https://tocsin.example/channels/{channel.id}/" in report.body

    # More failures of the same channel within the hour: no more reports.
    for minutes in (10, 20, 40):
        tell(failed_incident, to_channel(channel), now=t0 + minutes * MINUTE, step=minutes)
        send_due(t0 + minutes * MINUTE)
    assert Delivery.objects.filter(channel=channel, status="failed").count() == 4
    assert len(reports()) == 1
    # After the interval, a new failure is reported again.
    tell(failed_incident, to_channel(channel), now=t0 + 2 * HOUR, step=99)
    send_due(t0 + 2 * HOUR + 6 * MINUTE)
    assert len(reports()) == 2


def test_a_receiver_that_never_answers_is_failed_while_others_deliver_on_time(
    receiver, team, check, failed_incident, t0, settings
):
    settings.OUTBOUND_TIMEOUT = 0.5
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    with receiving() as dead:
        dead.script = [HANG]
        dead_channel = make_channel(team, "webhook", name="dead", url=dead.url())
        good_channel = make_channel(team, "slack", name="chat", url=receiver.url("/slack"))
        now = t0 + MINUTE
        tell(failed_incident, to_channel(dead_channel), to_channel(good_channel), now=now)

        started = time.monotonic()
        outcomes = send_due(now)
        elapsed = time.monotonic() - started
        # One attempt each: the dead one costs its timeout (0.5 s), the good one is sent. The
        # dead receiver would hold the request until the test ends otherwise; the bound leaves
        # a busy machine room.
        assert elapsed < 10
        assert sorted(o.split(": ")[1].split(" at ")[0] for o in outcomes) == ["retry", "sent"]
        assert len(receiver.requests) == 1
        good = Delivery.objects.get(channel=good_channel)
        assert (good.status, good.sent_at) == ("sent", now)

        moment = now
        for _ in range(5):
            moment += HOUR
            send_due(moment)
        dead_delivery = Delivery.objects.get(channel=dead_channel)
        assert (dead_delivery.status, dead_delivery.attempts) == ("failed", 3)
        assert "timed out" in dead_delivery.last_error
        assert len(dead.requests) == 3
    # The good channel was never retried or delayed by the dead one.
    assert len(receiver.requests) == 1
    good.refresh_from_db()
    assert good.attempts == 1


def test_a_delivery_stuck_in_sending_is_handed_out_again(
    team, check, failed_incident, t0, settings
):
    settings.OUTBOX_STALE_AFTER = timedelta(minutes=2)
    channel = make_channel(team, "webhook", url="http://192.0.2.1/hook")
    tell(failed_incident, to_channel(channel), now=t0)
    flush_due_groups(now=t0)
    delivery = Delivery.objects.get()
    Delivery.objects.filter(id=delivery.id).update(status="sending", updated_at=t0)
    assert due_delivery_ids(now=t0 + MINUTE) == []
    assert due_delivery_ids(now=t0 + 3 * MINUTE) == [delivery.id]
    delivery.refresh_from_db()
    assert delivery.status == "pending"


# --- Slack-compatible ---------------------------------------------------------------------


def test_slack_message_has_every_field_and_the_actions_as_buttons(
    receiver, team, check, failed_incident, t0
):
    channel = make_channel(team, "slack", name="ops-chat", url=receiver.url("/services/T/B/X"))
    now = t0 + MINUTE
    tell(failed_incident, to_channel(channel), now=now)
    send_due(now)
    (request,) = receiver.requests
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json()
    text = payload["text"]
    # The text (what Mattermost shows, and Slack's notification) has everything.
    assert f"<https://tocsin.example/checks/{check.id}/|nightly-backup (production)>" in text
    for fact in [
        "*DOWN*",
        "Failure signal",
        f"*Severity:* {failed_incident.severity}",
        f"*Last ping at:* {t0.isoformat()}",
        "*Exit status:* 23",
        "*Run duration:* 95 s",
        f"*Run id:* {failed_incident.details['run_id']}",
        "*Tags:* backup, nightly",
        "rsync: disk quota exceeded",
        f"<https://tocsin.example/incidents/{failed_incident.id}/|Incident>",
    ]:
        assert fact in text, fact
    for label in [
        "Acknowledge",
        "Resolve",
        "Silence 1 h",
        "Silence 4 h",
        "Silence 24 h",
        "Not me, escalate now",
    ]:
        assert f"|{label}>" in text, label

    blocks = payload["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "DOWN nightly-backup (production)"},
    }
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    buttons = {b["text"]["text"]: b["url"] for b in actions["elements"]}
    assert list(buttons) == [
        "Acknowledge",
        "Resolve",
        "Silence 1 h",
        "Silence 4 h",
        "Silence 24 h",
        "Not me, escalate now",
    ]
    assert_action_links(dict(zip(ACTIONS, buttons.values(), strict=True)), failed_incident, channel)
    section_text = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert "*Exit status:* 23" in section_text
    assert "rsync: disk quota exceeded" in section_text


def test_slack_text_escapes_control_characters_of_check_names(receiver, team, check, t0):
    check.name = "<!channel> & friends"
    check.environment = ""
    check.save()
    incident = fail_a_run(check, t0)
    channel = make_channel(team, "slack", url=receiver.url())
    tell(incident, to_channel(channel), now=t0)
    send_due(t0)
    payload = receiver.requests[0].json()
    assert "<!channel>" not in payload["text"]
    assert "&lt;!channel&gt; &amp; friends" in payload["text"]


# --- ntfy ---------------------------------------------------------------------------------


def test_ntfy_push_has_headers_actions_and_the_whole_context(
    receiver, team, check, failed_incident, t0
):
    channel = make_channel(
        team, "ntfy", name="phones", url=receiver.url("/ops-alerts"), token="tk_abc"
    )
    failed_incident.severity = "critical"
    failed_incident.save()
    now = t0 + MINUTE
    tell(failed_incident, to_channel(channel), now=now)
    send_due(now)
    (request,) = receiver.requests
    headers = request.headers
    assert request.path == "/ops-alerts"
    assert headers["Title"] == "[Tocsin] DOWN nightly-backup (production)"
    assert headers["Priority"] == "urgent"
    assert headers["Tags"] == "rotating_light,production,backup,nightly"
    assert headers["Click"] == f"https://tocsin.example/incidents/{failed_incident.id}/"
    assert headers["Authorization"] == "Bearer tk_abc"
    actions = [part.strip() for part in headers["Actions"].split(";")]
    assert [a.split(",")[1].strip() for a in actions] == ['"Acknowledge"', '"Resolve"', '"Not me"']
    urls = [a.split(",", 2)[2].strip() for a in actions]
    body = request.body.decode()
    for fact in [
        "nightly-backup (production) is DOWN",
        "Why: Failure signal: the job reported a failure with exit status 23.",
        "Severity: critical",
        f"Last ping at: {t0.isoformat()}",
        "Exit status: 23",
        "Run duration: 95 s",
        f"Run id: {failed_incident.details['run_id']}",
        "Tags: backup, nightly",
        "rsync: disk quota exceeded",
        f"Incident: https://tocsin.example/incidents/{failed_incident.id}/",
        f"Check: https://tocsin.example/checks/{check.id}/",
        "Silence 1 h: https://tocsin.example/a/",
        "Silence 24 h: https://tocsin.example/a/",
        "Not me, escalate now: https://tocsin.example/a/",
    ]:
        assert fact in body, fact
    for url, action in zip(urls, ["acknowledge", "resolve", "escalate"], strict=True):
        claim = read_action_token(url.removeprefix("https://tocsin.example/a/").rstrip("/"))
        assert (claim.action, claim.channel_id) == (action, channel.id)


def test_ntfy_encodes_non_ascii_titles(receiver, team, check, t0):
    check.name = "Sauvegarde à Zürich"
    check.save()
    incident = fail_a_run(check, t0)
    channel = make_channel(team, "ntfy", url=receiver.url("/topic"))
    tell(incident, to_channel(channel), now=t0)
    send_due(t0)
    title = receiver.requests[0].headers["Title"]
    assert title.isascii() and title.startswith("=?utf-8?")
    assert (
        str(make_header(decode_header(title))) == "[Tocsin] DOWN Sauvegarde à Zürich (production)"
    )
    assert "Sauvegarde à Zürich" in receiver.requests[0].body.decode()


# --- the guard on every send ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["webhook", "slack", "ntfy"])
def test_a_channel_pointing_at_loopback_is_refused_at_send_time(
    receiver, team, check, failed_incident, t0, settings, kind
):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    channel = make_channel(team, kind, url=receiver.url())
    tell(failed_incident, to_channel(channel), now=t0)
    send_due(t0)
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    assert "private or reserved address" in delivery.last_error
    assert receiver.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_500_500_200_into_exactly_one_notification(
    celery_worker, receiver, team, check, settings
):
    settings.NOTIFICATION_RETRY_BASE = timedelta(milliseconds=200)
    receiver.script = [500, 500, 200]
    channel = make_channel(team, "webhook", url=receiver.url())
    with celery_worker.exclusive():
        now = database_now()
        incident = fail_a_run(check, now - 2 * SECOND)
        tell(incident, to_channel(channel), now=now)
    beat_until(
        celery_worker,
        lambda: Delivery.objects.filter(status="sent").exists(),
        what="the webhook delivered",
    )
    # Three more beats, run to the end by the worker: nothing else goes out.
    finished = len(celery_worker.finished)
    for _ in range(3):
        flush_notification_groups_task.delay()
        retry_due_deliveries_task.delay()
    celery_worker.wait_for(
        lambda: len(celery_worker.finished) >= finished + 6, what="three more beats run"
    )
    with celery_worker.exclusive():
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("sent", 3)
        assert Notification.objects.get(channel=channel).status == "sent"
    assert len(receiver.requests) == 3
    assert all(verify_signature(channel.secret, r) for r in receiver.requests)
    # The retries came from the row's next_attempt_at, claimed by delivery runs (a run that is
    # still going when a retry falls due takes it too); none was a Celery retry.
    runs = [state for name, state in celery_worker.finished if name.endswith("deliver_due_task")]
    assert runs and set(runs) == {"SUCCESS"}


def test_the_sweep_and_notify_never_wait_on_a_dead_receiver(receiver, team, check, t0, settings):
    # Were the sweep to call the receiver, it would wait the whole outbound timeout (30 s).
    settings.OUTBOUND_TIMEOUT = 30
    receiver.script = [HANG]
    channel = make_channel(team, "webhook", url=receiver.url())
    started = time.monotonic()
    with transaction.atomic():
        incident = fail_a_run(check, t0)
        tell(incident, to_channel(channel), now=t0)
    assert time.monotonic() - started < 15
    # The rows are owed; nothing touched the network.
    assert receiver.requests == []
    assert Notification.objects.get(channel=channel).status == "pending"


@pytest.mark.django_db(transaction=True)
def test_a_dead_receiver_of_one_team_does_not_hold_up_another_team(
    celery_worker, receiver, team, other_team, settings
):
    from tests.factories import CheckFactory

    settings.OUTBOUND_TIMEOUT = 1.0
    with receiving() as dead:
        dead.script = [HANG]
        dead_channel = make_channel(team, "webhook", name="dead", url=dead.url())
        good_channel = make_channel(other_team, "webhook", name="good", url=receiver.url())
        their_check = CheckFactory(team=other_team, name="their-job")
        our_check = CheckFactory(team=team, name="our-job")
        with celery_worker.exclusive():
            now = database_now()
            ours = fail_a_run(our_check, now - 2 * SECOND)
            theirs = fail_a_run(their_check, now - 2 * SECOND)
            started = time.monotonic()
            tell(ours, to_channel(dead_channel), now=now)
            tell(theirs, to_channel(good_channel), now=now)
        celery_worker.wait_for(
            lambda: Delivery.objects.filter(channel=good_channel, status="sent").exists(),
            what="the other team's webhook delivered",
        )
        # On time: at most one dead request's timeout behind, with a solo worker.
        assert time.monotonic() - started < settings.OUTBOUND_TIMEOUT + 5
        assert len(receiver.requests) == 1
        celery_worker.wait_for(
            # attempts counts from the claim; the outcome is recorded when the timeout ends
            # the request and the lease is given back (status leaves "sending").
            lambda: (
                Delivery.objects.filter(channel=dead_channel, attempts=1)
                .exclude(status="sending")
                .exists()
            ),
            what="the dead receiver's first attempt recorded",
        )
        with celery_worker.exclusive():
            dead_delivery = Delivery.objects.get(channel=dead_channel)
            assert dead_delivery.status == "pending"
            assert "timed out" in dead_delivery.last_error
