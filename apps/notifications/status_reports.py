"""Status reports: a daily, weekly or monthly email per person (monthly unless they chose
otherwise on the account page) about every check of every team they belong to: its status,
and for the period and the one before, the number of incidents, the total downtime (to the
second, from flips; paused time is not downtime) and the slowest runs.

Periods follow the person's display zone (UTC when they chose none): a monthly report is
about the last whole calendar month there (apps/teams/report_periods.py). A beat task calls
`send_due_reports` every REPORT_CHECK_INTERVAL; each person's report for a period is claimed
by inserting a StatusReport row whose unique constraint lets one run win, in the same
transaction as the sending, so two workers (or two beats by mistake) send it once, and a send
that fails releases the claim for the next run.
"""

import logging
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from apps.checks.downtime import Downtime, exact_duration
from apps.checks.history import check_downtime, slowest_runs
from apps.checks.models import Check, Run
from apps.incidents.models import Incident
from apps.teams.display_time import zone_or_none
from apps.teams.models import Team
from apps.teams.report_periods import (
    Frequency,
    Period,
    last_complete_period,
    previous_period,
)
from apps.teams.report_tokens import make_unsubscribe_token
from apps.teams.services import report_settings_of

from .models import StatusReport

logger = logging.getLogger(__name__)

SLOWEST_RUNS = 3


@dataclass(frozen=True)
class PeriodFigures:
    incidents: int
    downtime: Downtime
    slowest_runs: tuple[Run, ...]

    @property
    def downtime_text(self) -> str:
        return exact_duration(self.downtime.total)

    @property
    def slowest_text(self) -> str:
        return ", ".join(exact_duration(run.duration) for run in self.slowest_runs) or "none"


@dataclass(frozen=True)
class CheckLine:
    check: Check
    this_period: PeriodFigures
    period_before: PeriodFigures


@dataclass(frozen=True)
class TeamSection:
    team: Team
    lines: tuple[CheckLine, ...]


@dataclass(frozen=True)
class Report:
    frequency: Frequency
    period: Period
    period_before: Period
    zone_name: str
    teams: tuple[TeamSection, ...]

    @property
    def has_checks(self) -> bool:
        return any(section.lines for section in self.teams)


def period_figures(*, check_id, period: Period, now: datetime) -> PeriodFigures:
    return PeriodFigures(
        incidents=Incident.objects.filter(
            owner_id=check_id, opened_at__gte=period.start, opened_at__lt=period.end
        ).count(),
        downtime=check_downtime(check_id=check_id, start=period.start, end=period.end, now=now),
        slowest_runs=tuple(
            slowest_runs(check_id=check_id, start=period.start, end=period.end, limit=SLOWEST_RUNS)
        ),
    )


def build_status_report(
    *,
    user_id: int,
    frequency: Frequency,
    period: Period,
    period_before: Period,
    zone_name: str,
    now: datetime,
) -> Report:
    """The report about every check of every team of the user, for `period` and
    `period_before`, as of `now`. Read-only."""
    teams = Team.objects.filter(memberships__user_id=user_id).order_by("name", "id")
    sections = []
    for team in teams:
        lines = tuple(
            CheckLine(
                check=check,
                this_period=period_figures(check_id=check.id, period=period, now=now),
                period_before=period_figures(check_id=check.id, period=period_before, now=now),
            )
            for check in Check.objects.filter(team=team).order_by("name", "id")
        )
        sections.append(TeamSection(team=team, lines=lines))
    return Report(
        frequency=frequency,
        period=period,
        period_before=period_before,
        zone_name=zone_name or "UTC",
        teams=tuple(sections),
    )


def period_label(frequency: Frequency, period: Period) -> str:
    day = period.first_day
    if frequency == Frequency.MONTHLY:
        return day.strftime("%B %Y")
    if frequency == Frequency.WEEKLY:
        return f"the week of {day.day} {day:%B %Y}"
    return f"{day.day} {day:%B %Y}"


def _message(user, report: Report) -> EmailMultiAlternatives:
    unsubscribe_url = settings.SITE_URL + reverse(
        "teams:unsubscribe-reports", args=[make_unsubscribe_token(user_id=user.pk)]
    )
    context = {
        "user": user,
        "report": report,
        "label": period_label(report.frequency, report.period),
        "label_before": period_label(report.frequency, report.period_before),
        "account_url": settings.SITE_URL + reverse("dashboard:account"),
        "unsubscribe_url": unsubscribe_url,
        "site_url": settings.SITE_URL,
    }
    subject = " ".join(render_to_string("emails/status_report_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject,
        render_to_string("emails/status_report.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        [user.email],
        # Mail clients show an "unsubscribe" button and may use it in one click (RFC 8058).
        headers={
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(render_to_string("emails/status_report.html", context), "text/html")
    return message


def send_report_if_due(*, user, now: datetime) -> bool:
    """Send `user` the report of the last whole period before `now`, unless it went out
    already, reports are off, the period ended before they joined, or they watch no check.
    Returns whether this call sent it. Safe to call concurrently and repeatedly."""
    frequency, zone_name = report_settings_of(user.pk)
    if frequency == Frequency.OFF:
        return False
    zone = zone_or_none(zone_name) or zone_or_none("UTC")
    period = last_complete_period(frequency, now, zone)
    if user.date_joined >= period.end:
        return False
    claim = {"user_id": user.pk, "frequency": frequency.value, "period_start": period.start}
    if StatusReport.objects.filter(**claim).exists():
        return False  # the common case on every run but the first of a period: no work
    report = build_status_report(
        user_id=user.pk,
        frequency=frequency,
        period=period,
        period_before=previous_period(frequency, period, zone),
        zone_name=zone_name,
        now=now,
    )
    if not report.has_checks:
        return False
    try:
        with transaction.atomic():
            # A concurrent run that inserted the same claim first makes this INSERT wait for
            # its commit and then fail: only one of them reaches send().
            StatusReport.objects.create(**claim, period_end=period.end, sent_at=now)
            _message(user, report).send()
    except IntegrityError:
        return False
    except (OSError, smtplib.SMTPException) as exc:
        # The claim was rolled back with the failed send: the next run tries again.
        logger.warning("could not send the status report of user %s: %s", user.pk, exc)
        return False
    return True


def send_due_reports(*, now: datetime) -> int:
    """Every due status report, at `now`. Returns how many this call sent."""
    users = (
        get_user_model()
        .objects.filter(is_active=True, memberships__isnull=False)
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )
    return sum(send_report_if_due(user=user, now=now.astimezone(UTC)) for user in users)
