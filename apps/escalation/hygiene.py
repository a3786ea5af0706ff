"""Silence hygiene: a silence that is about to end while checks it covers still fail is easy to
forget, and then everyone is paged at once. Its creator is emailed shortly before the end
(SILENCE_EXPIRY_REMINDER), once per silence."""

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from apps.incidents.models import Incident

from .holds import matching_checks
from .models import Silence

logger = logging.getLogger(__name__)


def failing_checks_of(silence: Silence) -> list:
    """The checks the silence covers that have an open incident."""
    checks = matching_checks(silence.team_id, silence.matchers)
    failing_ids = set(
        Incident.objects.filter(owner__in=checks)
        .exclude(state=Incident.State.RESOLVED)
        .values_list("owner_id", flat=True)
    )
    return [check for check in checks if check.id in failing_ids]


def remind_expiring_silences(*, now: datetime) -> int:
    """Email the creator of each silence ending within SILENCE_EXPIRY_REMINDER of `now` whose
    checks still fail. Each silence is claimed with a compare-and-set on expiry_reminded_at, so
    concurrent runs send one reminder; a failed send releases the claim for the next run.
    Returns the number of reminders sent. Call outside a transaction: it sends mail."""
    due = Silence.objects.select_related("created_by", "team").filter(
        expired_at__isnull=True,
        expiry_reminded_at__isnull=True,
        created_by__isnull=False,
        starts_at__lte=now,
        ends_at__gt=now,
        ends_at__lte=now + settings.SILENCE_EXPIRY_REMINDER,
    )
    sent = 0
    for silence in due:
        if not silence.created_by.email:
            continue
        failing = failing_checks_of(silence)
        if not failing:
            continue
        claimed = Silence.objects.filter(id=silence.id, expiry_reminded_at__isnull=True).update(
            expiry_reminded_at=now
        )
        if not claimed:
            continue
        context = {
            "silence": silence,
            "failing": failing,
            "minutes_left": max(1, round((silence.ends_at - now).total_seconds() / 60)),
            "silences_url": f"{settings.SITE_URL}{reverse('escalation:silence-list')}",
        }
        try:
            send_mail(
                subject=" ".join(
                    render_to_string(
                        "escalation/emails/silence_expiring_subject.txt", context
                    ).split()
                ),
                message=render_to_string("escalation/emails/silence_expiring.txt", context),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[silence.created_by.email],
            )
        except Exception:
            logger.exception("could not send the expiry reminder of silence %s", silence.id)
            Silence.objects.filter(id=silence.id).update(expiry_reminded_at=None)
            continue
        sent += 1
    return sent
