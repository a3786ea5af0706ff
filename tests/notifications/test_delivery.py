"""Delivering outbox rows: one email per row however often it is delivered, SMTP failures
recorded and retried, permanent refusals and the last attempt marked failed, lost tasks
redelivered, and a broker outage that never fails the sweep.

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
from django.core import mail
from django.db import connection

from apps.checks.clock import database_now
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.notifications.delivery import (
    TransientDeliveryError,
    deliver_notification,
    stale_notification_ids,
)
from apps.notifications.models import Notification
from apps.notifications.tasks import redeliver_stale_notifications_task
from config.celery import app as celery_app

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
Status = Notification.DeliveryStatus

requires_postgres = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="needs two concurrent transactions; the in-memory SQLite test database is one "
    "connection",
)


def open_failure_incident(check, now) -> Incident:
    """A failed run, swept: the incident is open and its DOWN rows are pending."""
    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=1), token=check.ping_token, now=now
    )
    sweep_due_checks(now=now + SECOND)
    return Incident.objects.get(owner=check)


@pytest.fixture
def row(check, member, t0) -> Notification:
    open_failure_incident(check, t0)
    return Notification.objects.get(event="down", recipient=member)


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


def refresh(row: Notification) -> Notification:
    row.refresh_from_db()
    return row


# --- claim --------------------------------------------------------------------------------


def test_delivering_a_row_twice_sends_one_email(row, t0):
    assert deliver_notification(notification_id=row.id, now=t0) == f"notification {row.id}: sent"
    again = deliver_notification(notification_id=row.id, now=t0 + MINUTE)
    assert again == f"notification {row.id}: nothing to do"
    assert len(mail.outbox) == 1
    row = refresh(row)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == (Status.SENT, 1, t0, "")


def test_delivering_a_row_that_is_gone_does_nothing(db, t0):
    assert deliver_notification(notification_id=999_999, now=t0) == (
        "notification 999999: nothing to do"
    )
    assert mail.outbox == []


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_one_row_at_once_send_one_email(check, member, t0):
    open_failure_incident(check, t0)
    row = Notification.objects.get(recipient=member)
    barrier = threading.Barrier(4)
    outcomes = []

    def deliver():
        try:
            barrier.wait()
            outcomes.append(deliver_notification(notification_id=row.id, now=t0))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == [f"notification {row.id}: nothing to do"] * 3 + [
        f"notification {row.id}: sent"
    ]
    assert len(mail.outbox) == 1
    assert refresh(row).attempts == 1


# --- failures -----------------------------------------------------------------------------


def test_smtp_connection_refused_puts_the_row_back_to_pending(row, settings, t0):
    use_smtp(settings, closed_port())
    with pytest.raises(TransientDeliveryError, match="Connection refused"):
        deliver_notification(notification_id=row.id, now=t0 + MINUTE)
    row = refresh(row)
    assert row.status == Status.PENDING
    assert row.attempts == 1
    assert row.last_error.startswith("ConnectionRefusedError: ")
    assert row.updated_at == t0 + MINUTE
    assert row.sent_at is None


def test_smtp_server_that_never_answers_times_out(row, settings, t0):
    # A listening socket that never accepts: the TCP handshake completes (backlog), the SMTP
    # greeting never comes. EMAIL_TIMEOUT bounds the wait, so a hung relay cannot hang a worker.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        use_smtp(settings, silent.getsockname()[1], timeout=1)
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match="timed out"):
            deliver_notification(notification_id=row.id, now=t0)
        assert time.monotonic() - started < 10
    row = refresh(row)
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    assert "timed out" in row.last_error


def test_row_is_failed_after_the_last_attempt(row, settings, t0):
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    use_smtp(settings, closed_port())
    for attempt in (1, 2):
        with pytest.raises(TransientDeliveryError):
            deliver_notification(notification_id=row.id, now=t0 + attempt * MINUTE)
        assert (refresh(row).status, row.attempts) == (Status.PENDING, attempt)

    last = deliver_notification(notification_id=row.id, now=t0 + 3 * MINUTE)
    assert last == f"notification {row.id}: failed for good"
    row = refresh(row)
    assert (row.status, row.attempts) == (Status.FAILED, 3)
    assert row.last_error.startswith("ConnectionRefusedError")
    # A failed row is final: neither a late task nor the stale scan picks it up again.
    assert deliver_notification(notification_id=row.id, now=t0 + 4 * MINUTE).endswith(
        "nothing to do"
    )
    assert row.id not in stale_notification_ids(now=t0 + timedelta(days=1))
    assert mail.outbox == []


def test_success_after_a_failure_clears_the_error(row, settings, t0):
    use_smtp(settings, closed_port())
    with pytest.raises(TransientDeliveryError):
        deliver_notification(notification_id=row.id, now=t0)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert deliver_notification(notification_id=row.id, now=t0 + MINUTE).endswith("sent")
    row = refresh(row)
    assert (row.status, row.attempts, row.last_error) == (Status.SENT, 2, "")
    assert row.sent_at == t0 + MINUTE
    assert len(mail.outbox) == 1


# --- a real SMTP server -------------------------------------------------------------------


class SmtpSink:
    """aiosmtpd handler: keeps what it accepts; can greylist or refuse."""

    def __init__(self):
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse_recipients: dict[str, str] = {}
        self.greylist_first = 0

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


@contextmanager
def smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = closed_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
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


def test_email_goes_out_over_smtp(row, smtp_sink, member, settings, t0):
    assert deliver_notification(notification_id=row.id, now=t0).endswith("sent")

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
    assert refresh(row).status == Status.SENT


def test_greylisting_is_retried(row, smtp_sink, t0):
    smtp_sink.greylist_first = 1
    with pytest.raises(TransientDeliveryError, match="451"):
        deliver_notification(notification_id=row.id, now=t0)
    assert refresh(row).status == Status.PENDING
    assert "Greylisted" in row.last_error

    assert deliver_notification(notification_id=row.id, now=t0 + MINUTE).endswith("sent")
    assert len(smtp_sink.received) == 1
    assert (refresh(row).status, row.attempts) == (Status.SENT, 2)


def test_permanent_refusal_is_recorded_not_retried(row, smtp_sink, member, t0):
    smtp_sink.refuse_recipients[member.email] = "550 5.1.1 No such user here"
    summary = deliver_notification(notification_id=row.id, now=t0)
    assert summary == f"notification {row.id}: failed for good"
    row = refresh(row)
    assert (row.status, row.attempts) == (Status.FAILED, 1)
    assert row.last_error.startswith("SMTPRecipientsRefused")
    assert "No such user here" in row.last_error
    assert smtp_sink.received == []


# --- stale rows ---------------------------------------------------------------------------


def test_stale_rows_are_found_and_sending_ones_reset(check, member, owner, settings, t0):
    settings.OUTBOX_STALE_AFTER = timedelta(minutes=2)
    incident = Incident.objects.create(
        owner=check, kind=Incident.Kind.FAILURE_SIGNAL, opened_at=t0, details={}
    )
    now = t0 + timedelta(hours=1)

    def make(address, status, age):
        return Notification.objects.create(
            incident=incident,
            event="down",
            recipient=member,
            address=address,
            status=status,
            created_at=now - age,
            updated_at=now - age,
        )

    old_pending = make("a@example.com", Status.PENDING, 3 * MINUTE)
    old_sending = make("b@example.com", Status.SENDING, 3 * MINUTE)
    fresh_pending = make("c@example.com", Status.PENDING, MINUTE)
    fresh_sending = make("d@example.com", Status.SENDING, MINUTE)
    at_the_cutoff = make("e@example.com", Status.PENDING, 2 * MINUTE)
    old_sent = make("f@example.com", Status.SENT, timedelta(days=1))
    old_failed = make("g@example.com", Status.FAILED, timedelta(days=1))

    assert sorted(stale_notification_ids(now=now)) == sorted([old_pending.id, old_sending.id])

    # A row stuck in sending (its worker died mid-send) is claimable again.
    assert (refresh(old_sending).status, old_sending.updated_at) == (Status.PENDING, now)
    assert (refresh(old_pending).status, old_pending.updated_at) == (
        Status.PENDING,
        now - 3 * MINUTE,
    )
    for untouched, status in [
        (fresh_pending, Status.PENDING),
        (fresh_sending, Status.SENDING),
        (at_the_cutoff, Status.PENDING),
        (old_sent, Status.SENT),
        (old_failed, Status.FAILED),
    ]:
        assert refresh(untouched).status == status
    # The reset row now looks fresh: a second scan right away does not hand it out twice.
    assert stale_notification_ids(now=now) == [old_pending.id]


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
    settings.OUTBOX_STALE_AFTER = timedelta(0)
    now = database_now()
    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=2), token=check.ping_token, now=now
    )
    with celery_worker.exclusive(), broker_down():
        started = time.monotonic()
        result = sweep_due_checks(now=now + SECOND)
        elapsed = time.monotonic() - started
    # The sweep committed its work and said so; enqueueing failed quietly after the commit.
    assert (result.opened, result.errors) == (1, [])
    assert elapsed < 20
    assert "it will be redelivered" in caplog.text
    with celery_worker.exclusive():
        assert Incident.objects.get(owner=check).state == Incident.State.TRIGGERED
        assert sorted(Notification.objects.values_list("status", flat=True)) == ["pending"] * 2
    assert mail.outbox == []

    # The broker is back; beat's periodic redelivery hands the rows to the worker.
    redeliver_stale_notifications_task.delay()
    celery_worker.wait_for(
        lambda: set(Notification.objects.values_list("status", flat=True)) == {Status.SENT},
        what="both rows sent",
    )
    assert sorted(m.to[0] for m in mail.outbox) == sorted([member.email, owner.email])
    assert {m.subject for m in mail.outbox} == {"[Tocsin] DOWN nightly-backup (production)"}


@pytest.mark.django_db(transaction=True)
def test_worker_retries_smtp_failures_with_backoff_until_the_last_attempt(
    celery_worker, check, member, settings
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    use_smtp(settings, closed_port())
    now = database_now()
    with celery_worker.exclusive():
        open_failure_incident(check, now)
    celery_worker.wait_for(
        lambda: Notification.objects.filter(status=Status.FAILED).exists(),
        what="the row marked failed",
    )
    row = Notification.objects.get()
    assert (row.status, row.attempts) == (Status.FAILED, 2)
    assert row.last_error.startswith("ConnectionRefusedError")
    assert mail.outbox == []
    assert [state for name, state in celery_worker.finished if "deliver" in name] == [
        "RETRY",
        "SUCCESS",
    ]


@pytest.mark.django_db(transaction=True)
def test_worker_delivers_over_smtp_after_greylisting(celery_worker, check, member, settings):
    with smtp_server() as (sink, port):
        use_smtp(settings, port, timeout=5)
        sink.greylist_first = 1
        with celery_worker.exclusive():
            open_failure_incident(check, database_now())
        celery_worker.wait_for(
            lambda: Notification.objects.filter(status=Status.SENT).exists(),
            what="the row sent after one greylisting",
        )
    ((_, rcpt_tos, content),) = sink.received
    assert rcpt_tos == [member.email]
    assert b"Subject: [Tocsin] DOWN nightly-backup (production)" in content
    row = Notification.objects.get()
    assert (row.status, row.attempts, row.last_error) == (Status.SENT, 2, "")
