"""A check whose evaluation raises is never left stuck in silence.

The sweeper folds a check's pending pings one at a time when the whole fold raised, to find
the first ping that cannot be folded; that ping is skipped (its outcome becomes "error") so
the pings after it, and the check's deadlines, are judged again at once. When nothing pending
can be blamed (the check's own state is unreadable), the check is looked at again after
RETRY_BROKEN_CHECK_AFTER. Either way the failure is recorded on the check, which the check page
and /healthz show, and the team's owners and admins are emailed, at most once per
REPORT_INTERVAL per check.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from apps.teams.services import admin_addresses

from .models import Check, Ping
from .storable import storable_text

logger = logging.getLogger(__name__)

# The outcome of a ping the sweeper could not fold in (Ping.outcome otherwise holds a
# rules.Outcome value).
PING_ERROR = "error"
RETRY_BROKEN_CHECK_AFTER = timedelta(minutes=5)
REPORT_INTERVAL = timedelta(hours=1)
# /healthz is unhealthy while an evaluation failed this recently.
HEALTH_WINDOW = timedelta(minutes=15)


def describe_error(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return storable_text(text, Check._meta.get_field("evaluation_error").max_length)


def record_evaluation_failure(
    check: Check, *, error: BaseException, skipped_n: int | None, now: datetime
) -> bool:
    """Skip ping `skipped_n` (None: no ping to blame) and record `error` on the check, which
    the caller has locked. The check is due again at once after a skip, else after
    RETRY_BROKEN_CHECK_AFTER. Returns whether the team should be told (no report about this
    check within REPORT_INTERVAL). Safe to repeat: a second call skips nothing more."""
    description = describe_error(error)
    if skipped_n is not None:
        Ping.objects.filter(owner=check, n=skipped_n).update(outcome=PING_ERROR)
        description = storable_text(f"ping #{skipped_n} skipped: {description}", 500)
        progress = {"processed_n": skipped_n, "alert_after": now}
    else:
        progress = {"alert_after": now + RETRY_BROKEN_CHECK_AFTER}
    report_due = Check.objects.filter(
        Q(evaluation_failed_at__isnull=True) | Q(evaluation_failed_at__lte=now - REPORT_INTERVAL),
        id=check.id,
    ).exists()
    Check.objects.filter(id=check.id).update(
        evaluation_failed_at=now, evaluation_error=description, **progress
    )
    return report_due


def report_evaluation_failure(check_id: str) -> bool:
    """Email the check's team owners and admins what went wrong. Returns whether a mail went
    out. Sent directly, not through the outbox: the outbox serves the very machinery that may
    be broken."""
    check = Check.objects.select_related("team").filter(id=check_id).first()
    if check is None or check.evaluation_failed_at is None:
        return False
    addresses = admin_addresses(check.team_id)
    if not addresses:
        return False
    context = {
        "check": check,
        "check_url": settings.SITE_URL + reverse("dashboard:check-detail", args=[check.id]),
        "interval": REPORT_INTERVAL,
    }
    subject = " ".join(render_to_string("emails/evaluation_failed_subject.txt", context).split())
    send_mail(
        subject,
        render_to_string("emails/evaluation_failed.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        addresses,
    )
    return True


def recent_evaluation_failures(now: datetime) -> dict:
    """For /healthz: checks whose evaluation failed within HEALTH_WINDOW, and the latest."""
    recent = Check.objects.filter(evaluation_failed_at__gt=now - HEALTH_WINDOW)
    latest = recent.order_by("-evaluation_failed_at").first()
    return {
        "checks": recent.count(),
        "latest_at": latest.evaluation_failed_at.isoformat() if latest else None,
        "latest_error": latest.evaluation_error if latest else "",
    }
