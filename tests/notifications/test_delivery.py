"""Delivering emails: one email per delivery however often it is attempted, SMTP failures
recorded and retried from next_attempt_at, permanent refusals and the last attempt marked
failed, lost tasks handed out again, and a broker outage that never fails the sweep.

SMTP failures are real: a closed port, a server that never answers, and a real SMTP server
(aiosmtpd) in a thread that accepts, greylists or refuses.
"""

import email
import email.policy
import email.utils
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.core import mail
from django.db import connection

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from apps.incidents.models import Incident
from apps.notifications.delivery import deliver, due_delivery_ids
from apps.notifications.flush import flush_due_groups
from apps.notifications.models import Delivery, Notification
from apps.notifications.tasks import flush_notification_groups_task, retry_due_deliveries_task
from config.celery import app as celery_app

from .conftest import beat_until

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
Status = Delivery.Status


def open_failure_incident(check, now) -> Incident:
    """A failed run, swept: the incident is open and its DOWN rows are pending."""
    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=1), token=check.ping_token, now=now
    )
    sweep_due_checks(now=now + SECOND)
    return Incident.objects.get(owner=check)


@pytest.fixture
def delivery(check, member, t0) -> Delivery:
    """The member's DOWN email, put into its delivery (no grouping wait in tests)."""
    open_failure_incident(check, t0 - SECOND)
    flush_due_groups(now=t0)
    return Delivery.objects.get(recipient=member)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


def use_smtp(settings, port: int, timeout: int = 1) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_TIMEOUT = timeout
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False


def refresh(row):
    row.refresh_from_db()
    return row


# --- claim --------------------------------------------------------------------------------


def test_delivering_twice_sends_one_email(delivery, t0):
    assert deliver(delivery_id=delivery.id, now=t0) == f"delivery {delivery.id}: sent"
    again = deliver(delivery_id=delivery.id, now=t0 + MINUTE)
    assert again == f"delivery {delivery.id}: nothing to do"
    assert len(mail.outbox) == 1
    delivery = refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.sent_at, delivery.last_error) == (
        Status.SENT,
        1,
        t0,
        "",
    )
    row = Notification.objects.get(delivery=delivery)
    assert (row.status, row.attempts, row.sent_at) == (Status.SENT, 1, t0)


def test_delivering_one_that_is_gone_does_nothing(db, t0):
    assert deliver(delivery_id=999_999, now=t0) == "delivery 999999: nothing to do"
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_one_at_once_send_one_email(check, member, t0):
    open_failure_incident(check, t0)
    flush_due_groups(now=t0 + SECOND)
    delivery = Delivery.objects.get(recipient=member)
    barrier = threading.Barrier(4)
    outcomes = []

    def attempt():
        try:
            barrier.wait()
            outcomes.append(deliver(delivery_id=delivery.id, now=t0 + SECOND))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == [f"delivery {delivery.id}: nothing to do"] * 3 + [
        f"delivery {delivery.id}: sent"
    ]
    assert len(mail.outbox) == 1
    assert refresh(delivery).attempts == 1


# --- failures -----------------------------------------------------------------------------


def test_smtp_connection_refused_schedules_a_retry(delivery, settings, t0):
    settings.NOTIFICATION_RETRY_BASE = timedelta(seconds=10)
    use_smtp(settings, closed_port())
    outcome = deliver(delivery_id=delivery.id, now=t0 + MINUTE, jitter=0.5)
    assert outcome.endswith(f"retry at {(t0 + MINUTE + 7.5 * SECOND).isoformat()}")
    delivery = refresh(delivery)
    assert delivery.status == Status.PENDING
    assert delivery.attempts == 1
    assert delivery.next_attempt_at == t0 + MINUTE + 7.5 * SECOND
    assert delivery.last_error.startswith("ConnectionRefusedError: ")
    assert delivery.sent_at is None
    assert Notification.objects.get(delivery=delivery).last_error == delivery.last_error


def test_smtp_server_that_never_answers_times_out(delivery, settings, t0):
    # A listening socket that never accepts: the TCP handshake completes (backlog), the SMTP
    # greeting never comes. EMAIL_TIMEOUT bounds the wait, so a hung relay cannot hang a worker.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        use_smtp(settings, silent.getsockname()[1], timeout=1)
        started = time.monotonic()
        assert "retry at" in deliver(delivery_id=delivery.id, now=t0)
        assert time.monotonic() - started < 10
    delivery = refresh(delivery)
    assert (delivery.status, delivery.attempts) == (Status.PENDING, 1)
    assert "timed out" in delivery.last_error


def test_failed_after_the_last_attempt(delivery, settings, t0):
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    use_smtp(settings, closed_port())
    moment = t0
    for attempt in (1, 2):
        assert "retry at" in deliver(delivery_id=delivery.id, now=moment)
        assert (refresh(delivery).status, delivery.attempts) == (Status.PENDING, attempt)
        moment = delivery.next_attempt_at

    last = deliver(delivery_id=delivery.id, now=moment)
    assert last == f"delivery {delivery.id}: failed for good"
    delivery = refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        Status.FAILED,
        3,
        None,
    )
    assert delivery.last_error.startswith("ConnectionRefusedError")
    # A failed delivery is final: neither a late task nor the retry scan picks it up again.
    assert deliver(delivery_id=delivery.id, now=moment + MINUTE).endswith("nothing to do")
    assert delivery.id not in due_delivery_ids(now=t0 + timedelta(days=1))
    assert Notification.objects.get(delivery=delivery).status == Status.FAILED


def test_success_after_a_failure_clears_the_error(delivery, settings, t0):
    use_smtp(settings, closed_port())
    deliver(delivery_id=delivery.id, now=t0)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    retry_at = refresh(delivery).next_attempt_at
    assert deliver(delivery_id=delivery.id, now=retry_at).endswith("sent")
    delivery = refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (Status.SENT, 2, "")
    assert delivery.sent_at == retry_at
    assert len(mail.outbox) == 1


# --- a real SMTP server -------------------------------------------------------------------


class SmtpSink:
    """aiosmtpd handler: keeps what it accepts; can greylist or refuse."""

    def __init__(self):
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse_recipients: dict[str, str] = {}
        self.greylist_first = 0
        self.refuse_sessions_first = 0  # greet that many sessions with a 554 instead of a 220
        self.refused_sessions = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_recipients:
            return self.refuse_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.greylist_first > 0:
            self.greylist_first -= 1
            return "451 4.7.1 Greylisted, try again later"
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class RefusingSMTP(SMTP):
    """aiosmtpd's server, except that it can refuse a whole session in its greeting (RFC 5321
    3.1: "554 No SMTP service here"), as a server does that is overloaded or not set up yet."""

    async def push(self, status):
        sink = self.event_handler
        greeting = str(status).startswith("220 ") and not self.session.host_name
        if greeting and sink.refuse_sessions_first > 0:
            sink.refuse_sessions_first -= 1
            sink.refused_sessions += 1
            status = "554 5.3.2 Not accepting messages now"
        await super().push(status)


class RefusingController(Controller):
    def factory(self):
        return RefusingSMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = closed_port()
    controller = RefusingController(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink(settings) -> Iterator[SmtpSink]:
    with smtp_server() as (sink, port):
        use_smtp(settings, port, timeout=5)
        yield sink


def test_email_goes_out_over_smtp(delivery, smtp_sink, member, settings, t0):
    assert deliver(delivery_id=delivery.id, now=t0).endswith("sent")

    ((mail_from, rcpt_tos, content),) = smtp_sink.received
    assert mail_from == email.utils.parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    assert rcpt_tos == [member.email]
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert message["Subject"] == "[Tocsin] DOWN nightly-backup (production)"
    assert message["To"] == member.email
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "nightly-backup (production) is DOWN." in text
    assert "Acknowledge: https://tocsin.example/a/" in text
    assert 'href="https://tocsin.example/a/' in html
    assert refresh(delivery).status == Status.SENT


def test_greylisting_is_retried(delivery, smtp_sink, t0):
    smtp_sink.greylist_first = 1
    assert "retry at" in deliver(delivery_id=delivery.id, now=t0)
    delivery = refresh(delivery)
    assert delivery.status == Status.PENDING
    assert "Greylisted" in delivery.last_error

    assert deliver(delivery_id=delivery.id, now=delivery.next_attempt_at).endswith("sent")
    assert len(smtp_sink.received) == 1
    assert (refresh(delivery).status, delivery.attempts) == (Status.SENT, 2)


def test_permanent_refusal_is_recorded_not_retried(delivery, smtp_sink, member, t0):
    smtp_sink.refuse_recipients[member.email] = "550 5.1.1 No such user here"
    summary = deliver(delivery_id=delivery.id, now=t0)
    assert summary == f"delivery {delivery.id}: failed for good"
    delivery = refresh(delivery)
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 1)
    assert delivery.last_error.startswith("SMTPRecipientsRefused")
    assert "No such user here" in delivery.last_error
    assert smtp_sink.received == []


# --- lost tasks ---------------------------------------------------------------------------


def test_due_and_stuck_deliveries_are_handed_out_again(check, member, owner, settings, t0):
    settings.OUTBOX_STALE_AFTER = timedelta(minutes=2)
    now = t0 + timedelta(hours=1)

    def make(status, *, age, next_attempt_in=None):
        return Delivery.objects.create(
            team=check.team,
            target=f"user:{member.id}",
            recipient=member,
            address=member.email,
            summary="DOWN x",
            status=status,
            created_at=now - age,
            updated_at=now - age,
            next_attempt_at=None if next_attempt_in is None else now + next_attempt_in,
        )

    due = make(Status.PENDING, age=3 * MINUTE, next_attempt_in=-SECOND)
    due_now = make(Status.PENDING, age=MINUTE, next_attempt_in=timedelta(0))
    not_yet = make(Status.PENDING, age=MINUTE, next_attempt_in=SECOND)
    stuck = make(Status.SENDING, age=3 * MINUTE)
    busy = make(Status.SENDING, age=MINUTE)
    sent = make(Status.SENT, age=timedelta(days=1))
    failed = make(Status.FAILED, age=timedelta(days=1))

    assert sorted(due_delivery_ids(now=now)) == sorted([due.id, due_now.id, stuck.id])
    # A delivery stuck in sending (its worker died mid-send) is claimable again.
    assert (refresh(stuck).status, stuck.next_attempt_at) == (Status.PENDING, now)
    for untouched, status in [
        (not_yet, Status.PENDING),
        (busy, Status.SENDING),
        (sent, Status.SENT),
        (failed, Status.FAILED),
    ]:
        assert refresh(untouched).status == status


# --- across the queue: a real worker ------------------------------------------------------


@contextmanager
def broker_down():
    """Point the Celery app's broker at a closed port for publishing, then restore it.

    Publishing goes through the app's producer pool, which is built once and cached; the pool
    is set aside (not closed) and rebuilt against the bad URL, then the original is put back."""
    conf = celery_app.conf
    saved_conf = {key: conf[key] for key in ("broker_url", "broker_transport_options")}
    saved_pool, saved_producers = celery_app._pool, celery_app.amqp._producer_pool
    conf["broker_url"] = f"redis://127.0.0.1:{closed_port()}/0"
    conf["broker_transport_options"] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    celery_app._pool = celery_app.amqp._producer_pool = None
    try:
        yield
    finally:
        if celery_app._pool is not None:
            celery_app._pool.force_close_all()
        conf.update(saved_conf)
        celery_app._pool, celery_app.amqp._producer_pool = saved_pool, saved_producers


@pytest.mark.django_db(transaction=True)
def test_broker_outage_does_not_fail_the_sweep_and_the_outbox_catches_up(
    celery_worker, check, member, owner, settings, caplog
):
    now = database_now()
    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=2),
        token=check.ping_token,
        now=now - SECOND,
    )
    with celery_worker.exclusive(), broker_down():
        started = time.monotonic()
        result = sweep_due_checks(now=now)
        elapsed = time.monotonic() - started
    # The sweep committed its work and said so; the flush after its commit made the messages
    # (no broker needed), and enqueueing their delivery failed quietly.
    assert (result.opened, result.errors) == (1, [])
    assert elapsed < 20
    assert "could not enqueue a delivery run" in caplog.text
    with celery_worker.exclusive():
        assert Incident.objects.get(owner=check).state == Incident.State.TRIGGERED
        assert sorted(Notification.objects.values_list("status", flat=True)) == ["pending"] * 2
        assert sorted(Delivery.objects.values_list("status", flat=True)) == ["pending"] * 2
    assert mail.outbox == []

    # The broker is back; beat's flush and retry scan hand the rows to the worker.
    flush_notification_groups_task.delay()
    retry_due_deliveries_task.delay()
    celery_worker.wait_for(
        lambda: set(Notification.objects.values_list("status", flat=True)) == {Status.SENT},
        what="both rows sent",
    )
    assert sorted(m.to[0] for m in mail.outbox) == sorted([member.email, owner.email])
    assert {m.subject for m in mail.outbox} == {"[Tocsin] DOWN nightly-backup (production)"}


@pytest.mark.django_db(transaction=True)
def test_worker_retries_smtp_failures_from_the_beat_until_the_last_attempt(
    celery_worker, check, member, settings
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    settings.NOTIFICATION_RETRY_BASE = timedelta(milliseconds=200)
    use_smtp(settings, closed_port())
    with celery_worker.exclusive():
        open_failure_incident(check, database_now() - SECOND)
    beat_until(
        celery_worker,
        lambda: Delivery.objects.filter(status=Status.FAILED).exists(),
        what="the delivery marked failed",
    )
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 2)
    assert delivery.last_error.startswith("ConnectionRefusedError")
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "refusal",
    ["451 to the message (greylisting)", "554 to the session (its greeting)"],
)
def test_worker_tells_once_over_smtp_that_refuses_then_accepts(
    celery_worker, check, member, settings, refusal
):
    """Issue 14: a real SMTP server that refuses first and accepts on the retry; the alert is
    told once. A 554 greeting refuses this server's service for now, not the message, so it is
    retried as a mail server retries it (unlike a 5xx to the message or its recipient)."""
    settings.NOTIFICATION_RETRY_BASE = timedelta(milliseconds=200)
    with smtp_server() as (sink, port):
        use_smtp(settings, port, timeout=5)
        if refusal.startswith("451"):
            sink.greylist_first = 1
        else:
            sink.refuse_sessions_first = 1
        with celery_worker.exclusive():
            open_failure_incident(check, database_now() - SECOND)
        beat_until(
            celery_worker,
            lambda: Delivery.objects.filter(status=Status.SENT).exists(),
            what="the delivery sent after one refusal",
        )
        # A few more rounds of the beat's flush and retry scan: a second copy would go now.
        rounds = len(celery_worker.finished)
        beat_until(
            celery_worker,
            lambda: len(celery_worker.finished) >= rounds + 6,
            what="three more rounds of the beat's tasks",
        )
    refused = 1 if refusal.startswith("554") else 0
    assert (sink.greylist_first, sink.refuse_sessions_first) == (0, 0)
    assert sink.refused_sessions == refused
    ((_, rcpt_tos, content),) = sink.received
    assert rcpt_tos == [member.email]
    assert b"Subject: [Tocsin] DOWN nightly-backup (production)" in content
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (Status.SENT, 2, "")
