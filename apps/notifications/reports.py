"""Telling the team that a target fails for good: one email to the team's owners and admins
per failing target per NOTIFICATION_FAILURE_REPORT_INTERVAL, so a dead webhook under a burst of
incidents produces one report, not a storm."""

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from apps.teams.services import admin_addresses

from .models import Delivery, DeliveryFailureReport

logger = logging.getLogger(__name__)


def claim_report(*, team_id: int, target: str, now: datetime) -> bool:
    """True when no report about `target` went out in the last interval; records this one.
    Concurrent failures of one target race on the row lock: one of them wins."""
    cutoff = now - settings.NOTIFICATION_FAILURE_REPORT_INTERVAL
    with transaction.atomic():
        updated = DeliveryFailureReport.objects.filter(
            team_id=team_id, target=target, reported_at__lte=cutoff
        ).update(reported_at=now)
        if updated:
            return True
        try:
            with transaction.atomic():
                DeliveryFailureReport.objects.create(
                    team_id=team_id, target=target, reported_at=now
                )
        except IntegrityError:
            return False
        return True


def report_failure(delivery: Delivery, *, error: str, now: datetime) -> bool:
    """Email the team's owners and admins that `delivery` failed for good, unless this target
    was reported within the interval. Returns whether a report went out. Sent directly (not
    through the outbox) so that reports cannot themselves fail into more reports; a failure to
    send it is logged."""
    if not claim_report(team_id=delivery.team_id, target=delivery.target, now=now):
        return False
    addresses = admin_addresses(delivery.team_id)
    if not addresses:
        return False
    page = (
        reverse("notifications:channel-detail", args=[delivery.channel_id])
        if delivery.channel_id
        else reverse("notifications:channel-list")
    )
    context = {
        "delivery": delivery,
        "error": error,
        "target_name": delivery.channel.name if delivery.channel else delivery.address,
        "page_url": f"{settings.SITE_URL}{page}",
        "interval": settings.NOTIFICATION_FAILURE_REPORT_INTERVAL,
    }
    subject = " ".join(render_to_string("emails/delivery_failed_subject.txt", context).split())
    try:
        send_mail(
            subject,
            render_to_string("emails/delivery_failed.txt", context),
            settings.DEFAULT_FROM_EMAIL,
            addresses,
        )
    except Exception as exc:
        logger.warning("could not report the failing target %s: %s", delivery.target, exc)
        return False
    return True
