"""Sending one Delivery. Called by its Celery task and by the retry beat; safe to call twice.

Attempts are claimed with a compare-and-set (pending and due -> sending), so two workers never
send one delivery twice. A failure that may pass later puts the delivery back to pending with
`next_attempt_at` pushed out (exponential backoff with jitter); the retry beat picks it up when
due, so a retry survives the loss of any worker or task. A permanent failure, or the last
attempt, marks it failed: the failure is shown on the channel's page and the incidents'
timelines, and reported to the team by email (once per target per period).
"""

import logging
import random
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from apps.incidents.services import record_event

from .channels import DeliveryError, SendOutcome
from .grouping import retry_delay
from .message import Message, build_message
from .models import Channel, Delivery, Notification

logger = logging.getLogger(__name__)
Status = Delivery.Status


def claim(delivery_id: int, now: datetime) -> bool:
    """Compare-and-set pending (and due) -> sending; only one worker wins an attempt. A first
    attempt is always due (the flush that made the delivery may have run with a `now` ahead of
    this worker's clock); a retry waits for its next_attempt_at."""
    return bool(
        Delivery.objects.filter(id=delivery_id, status=Status.PENDING)
        .filter(Q(attempts=0) | Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=Status.SENDING, attempts=F("attempts") + 1, updated_at=now)
    )


def send_message(message: Message, delivery: Delivery, *, now: datetime) -> SendOutcome:
    """Hand the message to the target's kind. Raises DeliveryError."""
    from .channels import email, ntfy, slack, webhook

    if delivery.target.startswith("user:"):
        return email.send(message, address=delivery.address)
    channel = delivery.channel
    if channel is None:
        raise DeliveryError("the channel was deleted", permanent=True)
    if not channel.is_enabled and not delivery.is_test:
        raise DeliveryError("the channel is disabled", permanent=True)
    if channel.kind == Channel.Kind.EMAIL:
        return email.send(message, address=channel.config.get("address", ""))
    sender = {
        Channel.Kind.WEBHOOK: webhook.send,
        Channel.Kind.SLACK: slack.send,
        Channel.Kind.NTFY: ntfy.send,
    }[channel.kind]
    return sender(message, channel=channel, delivery=delivery, now=now)


def deliver(*, delivery_id: int, now: datetime, jitter: float | None = None) -> str:
    """Make one attempt at a delivery, if it is pending and due. Returns a short summary:
    "sent", "retry at ...", "failed for good" or "nothing to do". `jitter` (0..1) is the
    random part of the backoff; tests pass it, production draws it."""
    if not claim(delivery_id, now):
        return f"delivery {delivery_id}: nothing to do"
    delivery = Delivery.objects.select_related("channel", "team").get(id=delivery_id)
    _mirror(delivery, status=Notification.DeliveryStatus.SENDING, now=now)
    try:
        outcome = send_message(build_message(delivery), delivery, now=now)
    except Exception as exc:
        if not isinstance(exc, DeliveryError):
            # A bug or an unexpected library error must not leave the delivery in `sending`
            # until the stale scan; it is retried like a transient failure, and logged.
            logger.exception("delivery %s raised", delivery_id)
            exc = DeliveryError(f"{type(exc).__name__}: {exc}")
        return _record_failure(delivery, exc, now=now, jitter=jitter)
    with transaction.atomic():
        Delivery.objects.filter(id=delivery.id).update(
            status=Status.SENT,
            sent_at=now,
            updated_at=now,
            next_attempt_at=None,
            last_error="",
            response_status=outcome.status,
        )
        _mirror(delivery, status=Notification.DeliveryStatus.SENT, now=now, sent_at=now, error="")
        _record_on_timelines(delivery, "notified", now)
    return f"delivery {delivery_id}: sent"


def _record_failure(delivery: Delivery, exc: DeliveryError, *, now, jitter) -> str:
    error = str(exc)[:1000]
    attempts = delivery.attempts  # loaded after the claim counted this attempt
    # A test notification is answered at once: its first failure is its result.
    final = exc.permanent or delivery.is_test or attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
    logger.warning("delivery %s attempt %s failed: %s", delivery.id, attempts, error)
    if final:
        with transaction.atomic():
            Delivery.objects.filter(id=delivery.id).update(
                status=Status.FAILED,
                next_attempt_at=None,
                last_error=error,
                updated_at=now,
                response_status=exc.status,
            )
            _mirror(delivery, status=Notification.DeliveryStatus.FAILED, now=now, error=error)
            _record_on_timelines(delivery, "notify_failed", now, error=error)
        if not delivery.is_test:
            from .reports import report_failure

            # After the failure is committed: the report's own SMTP exchange must not hold
            # the delivery's transaction open.
            report_failure(delivery, error=error, now=now)
        return f"delivery {delivery.id}: failed for good"

    delay = retry_delay(
        attempts,
        base=settings.NOTIFICATION_RETRY_BASE,
        cap=settings.NOTIFICATION_RETRY_CAP,
        jitter=random.random() if jitter is None else jitter,  # noqa: S311 (not crypto)
    )
    next_attempt_at = now + delay
    with transaction.atomic():
        Delivery.objects.filter(id=delivery.id).update(
            status=Status.PENDING,
            next_attempt_at=next_attempt_at,
            last_error=error,
            updated_at=now,
            response_status=exc.status,
        )
        _mirror(delivery, status=Notification.DeliveryStatus.PENDING, now=now, error=error)
    return f"delivery {delivery.id}: retry at {next_attempt_at.isoformat()}"


def _mirror(delivery: Delivery, *, status: str, now: datetime, sent_at=None, error=None) -> None:
    """Copy the delivery's state onto the notifications it carries (the incident page and the
    API show them per notification)."""
    fields = {"status": status, "updated_at": now, "attempts": F("attempts")}
    if status == Notification.DeliveryStatus.SENDING:
        fields["attempts"] = F("attempts") + 1
    if sent_at is not None:
        fields["sent_at"] = sent_at
    if error is not None:
        fields["last_error"] = error
    Notification.objects.filter(delivery_id=delivery.id).update(**fields)


def _record_on_timelines(delivery: Delivery, kind: str, now: datetime, **extra) -> None:
    rows = delivery.notifications.select_related("incident")
    via = (
        f"channel {delivery.channel.name}"
        if delivery.channel_id and delivery.channel
        else f"email to {delivery.address}"
    )
    for row in rows:
        record_event(
            row.incident,
            kind,
            now,
            about=row.event,
            to=row.address,
            target=row.target,
            via=via,
            delivery=delivery.id,
            attempts=delivery.attempts,
            **extra,
        )


def due_delivery_ids(*, now: datetime, limit: int = 500) -> list[int]:
    """Deliveries the retry beat hands to workers: pending ones whose next attempt is due, and
    ones stuck in `sending` for longer than OUTBOX_STALE_AFTER (their worker died mid-send;
    they are put back to pending, so the message may go out twice, which beats never)."""
    stuck = Delivery.objects.filter(
        status=Status.SENDING, updated_at__lt=now - settings.OUTBOX_STALE_AFTER
    )
    stuck.update(status=Status.PENDING, next_attempt_at=now, updated_at=now)
    return list(
        Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


def deliver_notification(*, notification_id: int, now: datetime) -> str:
    """Flush what is due by `now`, then make an attempt at the delivery that carries this
    notification (an operator's "send it now", and the tests' shortcut through the pipeline)."""
    from .flush import flush_due_groups

    flush_due_groups(now=now)
    delivery_id = (
        Notification.objects.filter(id=notification_id)
        .values_list("delivery_id", flat=True)
        .first()
    )
    if delivery_id is None:
        return f"notification {notification_id}: nothing to do"
    return deliver(delivery_id=delivery_id, now=now)
