"""POST /api/tocsin/v1/channels/<id>/test/: a test message through the real delivery path (a real
local HTTP server for the HTTP kinds, Django's outbox for email), its outcome in the answer, one
test per channel every few seconds, the outbound guard, permissions and bad input."""

import hmac
import threading
from datetime import timedelta
from hashlib import sha256

import pytest
from django.core import mail
from django.db import connection

from apps.notifications.models import Channel, Delivery
from apps.notifications.testing import TEST_INTERVAL, TestTooSoon, send_test_notification
from tests.notifications.receiver import receiving


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    with receiving() as running:
        yield running


def make_channel(team, kind, name="test-me", **config) -> Channel:
    return Channel.objects.create(team=team, name=name, kind=kind, config=config)


def send_test_url(channel) -> str:
    return f"/api/tocsin/v1/channels/{channel.id}/test/"


def test_a_webhook_test_reaches_a_real_server_signed_and_answers_its_outcome(api, team, receiver):
    channel = make_channel(team, "webhook", url=receiver.url("/in"))
    response = api.post(send_test_url(channel))
    assert response.status_code == 200, response.json()
    delivery = Delivery.objects.get()
    assert response.json() == {
        "delivery_id": delivery.id,
        "status": "sent",
        "attempts": 1,
        "response_status": 200,
        "last_error": "",
        "sent_at": response.json()["sent_at"],
        "created_at": response.json()["created_at"],
    }
    assert response.json()["sent_at"] is not None
    assert (delivery.is_test, delivery.channel, delivery.status) == (True, channel, "sent")
    (request,) = receiver.requests
    assert request.path == "/in" and request.json()["type"] == "test"
    # Signed like every webhook: the receiver can check its secret with a test.
    signed = f"{request.headers['X-Tocsin-Timestamp']}.".encode() + request.body
    expected = hmac.new(channel.secret.encode(), signed, sha256).hexdigest()
    assert request.headers["X-Tocsin-Signature"] == f"sha256={expected}"


@pytest.mark.parametrize("kind, path", [("slack", "/services/x"), ("ntfy", "/alerts")])
def test_every_http_kind_sends_its_own_test_message(api, team, receiver, kind, path):
    channel = make_channel(team, kind, url=receiver.url(path))
    response = api.post(send_test_url(channel))
    assert response.status_code == 200 and response.json()["status"] == "sent"
    (request,) = receiver.requests
    assert request.path == path
    if kind == "ntfy":
        assert request.headers["Title"] == "[Tocsin] Test notification"
    else:
        assert "Test" in request.json()["text"]


def test_an_email_test_lands_in_the_outbox(api, team):
    channel = make_channel(team, "email", address="oncall@example.com")
    response = api.post(send_test_url(channel))
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "sent"
    (message,) = mail.outbox
    assert message.to == ["oncall@example.com"]
    assert "Test" in message.subject


def test_a_failing_receiver_is_reported_once_not_retried(api, team, receiver):
    receiver.script = [500]
    channel = make_channel(team, "webhook", url=receiver.url())
    response = api.post(send_test_url(channel))
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["attempts"], body["response_status"]) == ("failed", 1, 500)
    assert "500" in body["last_error"]
    assert Delivery.objects.get().next_attempt_at is None
    assert len(receiver.requests) == 1
    assert mail.outbox == []  # a test is not a failure to report to the admins


def test_the_outbound_guard_refuses_a_private_address_on_test_too(api, team, settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = settings.OUTBOUND_ALLOW_PRIVATE = False
    # Saved behind the form's back (say, before the guard was tightened): the send checks again.
    channel = make_channel(team, "webhook", url="http://127.0.0.1:9/metadata")
    response = api.post(send_test_url(channel))
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert "address" in response.json()["last_error"].lower()


def test_a_second_test_within_the_interval_is_429_and_sends_nothing(api, team, receiver):
    channel = make_channel(team, "webhook", url=receiver.url())
    assert api.post(send_test_url(channel)).status_code == 200
    again = api.post(send_test_url(channel))
    assert again.status_code == 429
    assert again.json()["code"] == "throttled"
    assert 1 <= int(again["Retry-After"]) <= TEST_INTERVAL.seconds
    assert Delivery.objects.count() == 1 and len(receiver.requests) == 1
    # The limit is per channel: another channel of the team may be tested at once.
    other = make_channel(team, "webhook", name="other", url=receiver.url("/other"))
    assert api.post(send_test_url(other)).status_code == 200


def test_the_interval_is_counted_from_the_last_test(team, receiver, t0):
    channel = make_channel(team, "webhook", url=receiver.url())
    send_test_notification(channel=channel, now=t0)
    with pytest.raises(TestTooSoon) as too_soon:
        send_test_notification(channel=channel, now=t0 + TEST_INTERVAL - timedelta(seconds=1))
    assert too_soon.value.retry_after == timedelta(seconds=1)
    later = send_test_notification(channel=channel, now=t0 + TEST_INTERVAL)
    assert later.status == "sent" and len(receiver.requests) == 2


def test_a_disabled_channel_can_still_be_tested(api, team, receiver):
    channel = make_channel(team, "webhook", url=receiver.url())
    Channel.objects.filter(id=channel.id).update(is_enabled=False)
    assert api.post(send_test_url(channel)).json()["status"] == "sent"
    assert len(receiver.requests) == 1


def test_read_only_key_gets_403_and_nothing_is_sent(ro_api, team, receiver):
    channel = make_channel(team, "webhook", url=receiver.url())
    response = ro_api.post(send_test_url(channel))
    assert response.status_code == 403
    assert not Delivery.objects.exists() and receiver.requests == []


def test_another_teams_channel_is_404_and_no_key_is_401(other_api, anon_api, team, receiver):
    channel = make_channel(team, "webhook", url=receiver.url())
    assert other_api.post(send_test_url(channel)).status_code == 404
    assert anon_api.post(send_test_url(channel)).status_code == 401
    assert not Delivery.objects.exists() and receiver.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/tocsin/v1/channels/0/test/",
        "/api/tocsin/v1/channels/abc/test/",
        "/api/tocsin/v1/channels/99999999999999999999999/test/",
        "/api/tocsin/v1/channels/1%0A/test/",
    ],
    ids=["unknown", "not-a-number", "overflow", "newline"],
)
def test_bad_ids_are_404(api, team, path):
    response = api.post(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_get_is_not_allowed(api, team, receiver):
    channel = make_channel(team, "webhook", url=receiver.url())
    assert api.get(send_test_url(channel)).status_code == 405
    assert receiver.requests == []


@pytest.mark.parametrize(
    "raw",
    [b'{"url": "http://169.254.169.254/"}', b"not json", b"x" * 2_000_000],
    ids=["hostile-override", "malformed", "oversized"],
)
def test_a_body_changes_nothing(api, team, receiver, raw):
    """The endpoint takes no input: a body (even one naming another URL) is not read."""
    channel = make_channel(team, "webhook", url=receiver.url("/in"))
    response = api.call("POST", send_test_url(channel), raw=raw)
    assert response.status_code == 200
    assert [r.path for r in receiver.requests] == ["/in"]


@pytest.mark.django_db(transaction=True)
def test_two_tests_at_the_same_moment_send_one_message(team, receiver, t0):
    """The channel's row lock (PostgreSQL) or the single writer (SQLite, IMMEDIATE
    transactions) makes the second request see the first one's delivery."""
    channel = make_channel(team, "webhook", url=receiver.url())
    receiver.delay = 0.3  # the first send is still in flight when the second asks
    start = threading.Barrier(2)
    outcomes = []

    def send():
        try:
            start.wait()
            outcomes.append(send_test_notification(channel=channel, now=t0).status)
        except TestTooSoon:
            outcomes.append("too soon")
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["sent", "too soon"]
    assert Delivery.objects.count() == 1 and len(receiver.requests) == 1
