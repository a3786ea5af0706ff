"""Delivering one outbox row. Called by the Celery task; safe to call twice for one row."""

import logging
import smtplib
from datetime import datetime

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F, Q
from django.template.loader import render_to_string

from apps.incidents.models import Incident
from apps.incidents.services import may_act_on_incidents
from apps.incidents.tokens import make_action_token

from .models import Notification

logger = logging.getLogger(__name__)


class TransientDeliveryError(Exception):
    """Delivery failed in a way that may succeed later; the task retries with backoff."""


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def email_context(notification: Notification) -> dict:
    from django.urls import reverse

    incident: Incident = notification.incident
    check = incident.owner
    context = {
        "notification": notification,
        "incident": incident,
        "check": check,
        "details": incident.details,
        "check_url": absolute_url(reverse("dashboard:check-detail", args=[check.id])),
        "incident_url": absolute_url(reverse("dashboard:incident-detail", args=[incident.id])),
    }
    # Action links only for recipients who may act: viewers are told, but the links would
    # let them do what the dashboard refuses them.
    if (
        notification.event == Notification.Event.DOWN
        and notification.recipient_id
        and may_act_on_incidents(user_id=notification.recipient_id, team_id=check.team_id)
    ):
        for action in ("acknowledge", "resolve"):
            token = make_action_token(
                incident_id=incident.id, action=action, user_id=notification.recipient_id
            )
            context[f"{action}_url"] = absolute_url(reverse("incidents:action", args=[token]))
    return context


def render_email(notification: Notification) -> EmailMultiAlternatives:
    context = email_context(notification)
    name = f"emails/incident_{notification.event}"
    subject = " ".join(render_to_string(f"{name}_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{name}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.address],
    )
    message.attach_alternative(render_to_string(f"{name}.html", context), "text/html")
    return message


def is_permanent(exc: Exception) -> bool:
    """A 5xx SMTP answer (to the sender, every recipient or the message) says that the same
    message will be refused again: record it instead of retrying. Anything else (a refused or
    dropped connection, a timeout, a 4xx such as greylisting) may pass later."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


def claim(notification_id: int, now: datetime) -> bool:
    """Compare-and-set pending -> sending; only one worker wins a row."""
    return bool(
        Notification.objects.filter(
            id=notification_id, status=Notification.DeliveryStatus.PENDING
        ).update(
            status=Notification.DeliveryStatus.SENDING,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    )


def deliver_notification(*, notification_id: int, now: datetime) -> str:
    """Send one outbox row. Returns a short summary. Raises TransientDeliveryError when the
    attempt failed and another may succeed (the row is back to pending); after the last attempt,
    or on a permanent refusal (is_permanent), the row is marked failed and nothing is raised."""
    if not claim(notification_id, now):
        return f"notification {notification_id}: nothing to do"
    notification = Notification.objects.select_related("incident__owner__team", "recipient").get(
        id=notification_id
    )
    try:
        render_email(notification).send(fail_silently=False)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        final = is_permanent(exc) or notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
        Notification.objects.filter(id=notification_id).update(
            status=(
                Notification.DeliveryStatus.FAILED if final else Notification.DeliveryStatus.PENDING
            ),
            last_error=error,
            updated_at=now,
        )
        logger.warning("delivery of notification %s failed: %s", notification_id, error)
        if final:
            return f"notification {notification_id}: failed for good"
        raise TransientDeliveryError(error) from exc
    Notification.objects.filter(id=notification_id).update(
        status=Notification.DeliveryStatus.SENT, sent_at=now, updated_at=now, last_error=""
    )
    return f"notification {notification_id}: sent"


def stale_notification_ids(*, now: datetime) -> list[int]:
    """Rows whose task was lost: pending or sending for longer than OUTBOX_STALE_AFTER.

    A row stuck in `sending` belonged to a worker that died mid-send; it is put back to pending
    (an email may then go out twice, which beats never)."""
    cutoff = now - settings.OUTBOX_STALE_AFTER
    stale = Notification.objects.filter(
        Q(status=Notification.DeliveryStatus.PENDING)
        | Q(status=Notification.DeliveryStatus.SENDING),
        updated_at__lt=cutoff,
    )
    ids = list(stale.values_list("id", flat=True)[:500])
    Notification.objects.filter(id__in=ids, status=Notification.DeliveryStatus.SENDING).update(
        status=Notification.DeliveryStatus.PENDING, updated_at=now
    )
    return ids
