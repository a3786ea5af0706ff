"""The HTMX dashboard. Views stay thin: find the object through a team-scoped helper, call one
service, render (a partial when htmx asks)."""

import uuid
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.forms.models import model_to_dict
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from apps.checks.current import show_current
from apps.checks.forms import FIELDSETS, CheckForm, SchedulePreviewForm
from apps.checks.history import check_downtime
from apps.checks.models import Check, Ping
from apps.checks.schedule import NEVER, ScheduleError, ScheduleKind
from apps.checks.services import (
    delete_check,
    give_new_ping_url,
    pause_check,
    refresh_deadline,
    resume_check,
)
from apps.clock import database_now, database_ok
from apps.escalation.services import rename_check_in_matchers
from apps.incidents.models import Incident
from apps.teams.access import require_role
from apps.teams.current import choose_team, current_membership, dashboard_login_required
from apps.teams.display_time import zone_names
from apps.teams.models import Membership
from apps.teams.report_periods import recent_months
from apps.teams.templatetags.times import when

from . import health
from .charts import duration_chart, precise_duration
from .forms import CheckFilterForm, TeamSwitchForm
from .schedule_words import describe_schedule
from .snippets import crontab_schedule
from .uptime import uptime_ratio


def get_check_for_user(user, check_id, minimum=Membership.Role.VIEWER) -> tuple[Check, Membership]:
    """The check if the user is in its team (404 otherwise, whether or not it exists), and
    the user's membership; 403 without the `minimum` role."""
    check = Check.objects.select_related("team").filter(id=check_id).first()
    if check is None:
        raise Http404("No such check")
    return check, require_role(user, check.team_id, minimum)


def wants_partial(request) -> bool:
    """An htmx swap gets the named partial; an htmx history restore (back button after a
    pushed filter URL) needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


@dashboard_login_required
@require_GET
@vary_on_headers("HX-Request", "HX-History-Restore-Request")
def check_list(request):
    membership = current_membership(request)
    team_checks = Check.objects.filter(team=membership.team)
    counts = dict(team_checks.values_list("status").annotate(n=Count("id")).order_by())
    tags = sorted(
        {tag for tags in team_checks.values_list("tags", flat=True) for tag in tags.split()}
    )
    environments = (
        team_checks.exclude(environment="")
        .values_list("environment", flat=True)
        .distinct()
        .order_by("environment")
    )
    filters = CheckFilterForm(request.GET, tags=tags, environments=environments)
    context = {
        "now": database_now(),
        "membership": membership,
        "team": membership.team,
        "filters": filters,
        "checks": with_list_details(filters.apply(team_checks)),
        "is_filtered": bool(filters.filters().keys() - {"sort"}),
        "total": sum(counts.values()),
        "counts": [
            (status, label, counts.get(status, 0)) for status, label in Check.Status.choices
        ],
        "can_edit": membership.has_role(Membership.Role.ADMIN),
        "status_summary": summarise_statuses(
            counts, team_checks.filter(status=Check.Status.DOWN).order_by("name")
        ),
    }
    template = "dashboard/check_list.html"
    if wants_partial(request):
        template += "#check-table"
    return render(request, template, context)


def with_list_details(checks) -> list[Check]:
    """The list's checks, each with `next_due` (when its next ping is expected) and
    `acknowledged_by` (who acknowledged its open incident, if someone did): one more query."""
    checks = list(checks)
    acknowledged = dict(
        Incident.objects.filter(
            owner__in=[check.id for check in checks], state=Incident.State.ACKNOWLEDGED
        )
        .order_by("opened_at")
        .values_list("owner_id", "acknowledged_by__username")
    )
    for check in checks:
        check.next_due = next_expected_at(check)
        # Acknowledged from a chat channel's link: by nobody we know by name.
        check.acknowledged_by = (
            (acknowledged[check.id] or "someone") if check.id in acknowledged else ""
        )
    return checks


SUMMARY_NAMES = 3


def summarise_statuses(counts: dict, down_checks) -> str:
    """The team's checks in one sentence for screen readers, e.g. "Checks: 3 up, 1 down
    (nightly-backup)." It names the down checks, so that one check going down while another
    recovers still changes the sentence."""
    parts = [
        f"{counts[status]} {label.lower()}"
        for status, label in Check.Status.choices
        if counts.get(status)
    ]
    if not parts:
        return "No checks."
    names = [check.name for check in down_checks[: SUMMARY_NAMES + 1]]
    down = ""
    if names:
        more = len(names) > SUMMARY_NAMES or counts.get(Check.Status.DOWN, 0) > SUMMARY_NAMES
        down = " (" + ", ".join(names[:SUMMARY_NAMES]) + (", …" if more else "") + ")"
    return f"Checks: {', '.join(parts)}{down}."


# The check form's groups that most checks never change: folded under "Advanced".
ADVANCED_GROUPS = ["Runs", "What counts", "Email pings", "Alerting", "Severity"]
CHECK_FORM_EXTRAS = {
    "advanced_groups": ADVANCED_GROUPS,
    "advanced_fields": [
        name for legend, names in FIELDSETS if legend in ADVANCED_GROUPS for name in names
    ],
    "zone_names": zone_names(),
}


def clone_initial(source: Check) -> dict:
    """The check form's starting values for a copy of `source`: every setting the form has,
    named "copy of …", with no slug (a slug names one check of the team). Saving makes a new
    check, so the copy gets its own ping UUID and badge key; pings, runs and incidents stay."""
    initial = model_to_dict(source, fields=CheckForm._meta.fields)
    initial["name"] = f"copy of {source.name}"[: Check._meta.get_field("name").max_length]
    initial["slug"] = ""
    initial["depends_on"] = [parent.pk for parent in initial.get("depends_on") or []]
    return initial


@dashboard_login_required
def check_create(request):
    membership = current_membership(request)
    if not membership.has_role(Membership.Role.ADMIN):
        raise PermissionDenied("Only admins and owners can create checks.")
    initial, cloned_from = None, None
    if request.method != "POST" and "from" in request.GET:
        # Clone: only a check of the current team (404 for another team's, or a bad id).
        cloned_from = scoped_check_or_404(membership.team, request.GET["from"])
        initial = clone_initial(cloned_from)
    # An empty POST is still a submission (to be refused), not a first visit.
    form = CheckForm(
        request.POST if request.method == "POST" else None, initial=initial, team=membership.team
    )
    if request.method == "POST" and form.is_valid() and (check := form.save()):
        return redirect("dashboard:check-detail", check.id)
    status = 400 if form.errors else 200
    context = {
        "form": form,
        "team": membership.team,
        "cloned_from": cloned_from,
        **CHECK_FORM_EXTRAS,
    }
    return render(request, "dashboard/check_form.html", context, status=status)


def scoped_check_or_404(team, raw_id: str) -> Check:
    try:
        check_id = uuid.UUID(raw_id[:64])
    except ValueError:
        raise Http404("No such check") from None
    return get_object_or_404(Check, id=check_id, team=team)


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def check_edit(request, check_id):
    """The check form over an existing check (admins and owners). Saving makes the check due,
    so the sweeper judges it under the new schedule and thresholds at once, not at the old
    deadline."""
    check, membership = get_check_for_user(request.user, check_id, Membership.Role.ADMIN)
    if request.method == "POST":
        with transaction.atomic():
            # Locked, so that a concurrent API update of the same check cannot interleave.
            locked = Check.objects.select_for_update().get(id=check.id)
            form = CheckForm(request.POST, instance=locked, team=membership.team)
            if form.is_valid() and (saved := form.save()):
                refresh_deadline(check_id=saved.id, now=database_now())
                messages.success(request, "Saved: the check is judged by its new settings now.")
                return redirect("dashboard:check-detail", saved.id)
    else:
        form = CheckForm(instance=check, team=membership.team)
    context = {"form": form, "team": membership.team, "check": check, **CHECK_FORM_EXTRAS}
    return render(request, "dashboard/check_form.html", context, status=400 if form.errors else 200)


@dashboard_login_required
@require_GET
def schedule_preview(request):
    """The next five expected times of the schedule in the query string (the check form's live
    preview), or why the schedule cannot be used. Any team member may ask: it reads no data."""
    current_membership(request)
    form = SchedulePreviewForm(request.GET)
    context = {"error": None, "times": []}
    try:
        schedule = form.schedule()
    except ScheduleError as exc:
        context["error"] = str(exc)
    else:
        try:
            zone = ZoneInfo(schedule.timezone)
        except (ZoneInfoNotFoundError, ValueError):  # a period ignores its timezone
            zone = UTC
        context["timezone"] = str(zone)
        context["is_period"] = schedule.kind == ScheduleKind.PERIOD
        context["reading"] = describe_schedule(schedule.kind, schedule.expression, str(zone))
        context["times"] = [
            (moment.astimezone(zone), moment) for moment in schedule.upcoming(database_now(), 5)
        ]
    return render(request, "dashboard/_schedule_preview.html", context)


SNIPPET_TABS = [
    ("cron", "Crontab"),
    ("shell", "Shell"),
    ("wrapper", "Wrapper script"),
    ("python", "Python"),
    ("powershell", "PowerShell"),
]


def next_expected_at(check):
    """When the next ping is due by the schedule (grace not included), or None before the
    first ping, while paused, or when the schedule expects nothing more."""
    if check.last_ping_at is None or check.status == Check.Status.PAUSED:
        return None
    try:
        moment = check.schedule.next_after(check.last_ping_at)
    except ScheduleError:
        return None
    return None if moment == NEVER else moment


def _check_page_context(check, membership, now):
    show_current([check])  # its status reflects pings the sweeper has not folded yet
    runs = list(check.runs.all()[:20])
    incidents = list(check.incidents.select_related("acknowledged_by", "resolved_by")[:20])
    return {
        "now": now,
        "next_expected_at": next_expected_at(check),
        "open_incidents": [incident for incident in incidents if incident.is_open],
        "snippet_tabs": SNIPPET_TABS,
        "crontab_schedule": crontab_schedule(
            check.schedule_kind, check.period, check.schedule_expression
        ),
        "check": check,
        "membership": membership,
        "ping_url": f"{settings.SITE_URL}/ping/{check.id}",
        "slug_url": f"{settings.SITE_URL}/ping/{check.team.ping_key}/{check.slug}",
        **_ping_emails(check),
        "pings": check.pings.all()[:50],
        "flips": check.flips.all()[:20],
        "runs": runs,
        "chart": duration_chart(runs, describe=describe_run, moment=run_moment),
        "uptimes": [(days, check_uptime(check, days=days, now=now)) for days in (7, 30)],
        # In the reader's zone, which DisplayZoneMiddleware made the current one.
        "downtime_months": downtime_months(check, now=now, zone=timezone.get_current_timezone()),
        "incidents": incidents,
        "can_act": membership.has_role(Membership.Role.MEMBER),
        "can_edit": membership.has_role(Membership.Role.ADMIN),
    }


def _ping_emails(check) -> dict:
    """The check's email-ping addresses, when email pings are on (apps/checks/email_pings.py)."""
    domain = settings.PING_EMAIL_DOMAIN
    if not domain:
        return {"ping_email": "", "slug_email": ""}
    slug_email = f"{check.team.ping_key}+{check.slug}@{domain}" if check.slug else ""
    return {"ping_email": f"{check.id}@{domain}", "slug_email": slug_email}


def describe_run(run) -> str:
    started = when(run.started_at, "seconds") if run.started_at else "no start"
    return f"{started}: {precise_duration(run.duration)}, {run.get_outcome_display().lower()}"


def run_moment(run) -> str:
    """When the run happened, in the reader's zone, for the chart's time axis."""
    return when(run.started_at or run.ended_at)


def downtime_months(check, *, now, zone) -> list:
    """(month, Downtime) for this month so far and the two before, newest first: the same
    computation as the status reports' (apps/checks/history.py)."""
    return [
        (month, check_downtime(check_id=check.id, start=month.start, end=month.end, now=now))
        for month in recent_months(now, zone)
    ]


def check_uptime(check, *, days: int, now) -> float | None:
    """Uptime over the last `days` from the check's flips (apps/dashboard/uptime.py)."""
    since = now - timedelta(days=days)
    before = check.flips.filter(happened_at__lt=since).order_by("-happened_at", "-id").first()
    flips = check.flips.filter(happened_at__gte=since, happened_at__lt=now)
    return uptime_ratio(
        flips.values_list("happened_at", "to_status"),
        status_before=before.to_status if before else Check.Status.NEW,
        since=since,
        now=now,
    )


@dashboard_login_required
@require_GET
@vary_on_headers("HX-Request", "HX-History-Restore-Request")
def check_detail(request, check_id):
    check, membership = get_check_for_user(request.user, check_id)
    context = _check_page_context(check, membership, database_now())
    template = "dashboard/check_detail.html"
    if wants_partial(request):
        template += "#check-status"
    return render(request, template, context)


CHECK_ACTIONS = {"pause": pause_check, "resume": resume_check}


@dashboard_login_required
@require_POST
def check_action(request, check_id, action):
    """Pause or resume (admins and owners). htmx gets the status region back, with the
    buttons that now apply; a plain form post goes back to the check page."""
    check, membership = get_check_for_user(request.user, check_id, Membership.Role.ADMIN)
    service = CHECK_ACTIONS.get(action)
    if service is None:
        raise Http404("No such action")
    check = service(check_id=check.id, now=database_now())
    if request.htmx:
        context = _check_page_context(check, membership, database_now())
        return render(request, "dashboard/check_detail.html#check-status", context)
    return redirect("dashboard:check-detail", check.id)


@dashboard_login_required
@require_POST
def check_regenerate(request, check_id):
    check, _ = get_check_for_user(request.user, check_id, Membership.Role.ADMIN)
    with transaction.atomic():
        moved = give_new_ping_url(check_id=check.id)
        rename_check_in_matchers(team_id=check.team_id, old_id=check.id, new_id=moved.id)
    messages.success(
        request,
        "The check has a new ping URL, which is also its new UUID in the API; "
        "the old one no longer works.",
    )
    return redirect_anyhow(request, "dashboard:check-detail", moved.id)


@dashboard_login_required
@require_POST
def check_delete(request, check_id):
    check, _ = get_check_for_user(request.user, check_id, Membership.Role.ADMIN)
    if request.POST.get("confirm_name", "").strip() != check.name:
        messages.error(request, "Nothing was deleted: type the check's name exactly to confirm.")
        return redirect_anyhow(request, "dashboard:check-detail", check.id)
    delete_check(check_id=check.id)
    messages.success(request, f"Deleted the check “{check.name}”.")
    return redirect_anyhow(request, "dashboard:check-list")


def redirect_anyhow(request, to, *args):
    """A redirect that htmx follows with a full page load (so messages and every region of
    the new page show), and a plain redirect for a form posted without JavaScript."""
    if request.htmx:
        return HttpResponseClientRedirect(reverse(to, args=args))
    return redirect(to, *args)


@dashboard_login_required
@require_GET
def ping_body(request, check_id, n):
    """A ping's whole body as plain text; the check page shows only its tail. Served as
    text/plain with nosniff and a sandbox CSP, so a body full of HTML is never a page."""
    check, _ = get_check_for_user(request.user, check_id)
    ping = get_object_or_404(Ping, owner=check, n=n)
    response = HttpResponse(ping.body_text, content_type="text/plain; charset=utf-8")
    response["Content-Security-Policy"] = "sandbox"
    return response


@dashboard_login_required
@require_POST
def switch_team(request):
    """Show another of the user's teams; 404 for a team the user is not in."""
    form = TeamSwitchForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("team_id must be a team id.", content_type="text/plain")
    choose_team(request, form.cleaned_data["team_id"])
    return redirect("dashboard:check-list")


@dashboard_login_required
@require_GET
def sweeper_banner(request):
    """The sweeper banner alone (base.html polls it); the context processor fills it in."""
    return render(request, "dashboard/_sweeper_banner.html")


def _jsonable(episode):
    if episode is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in episode.items()}


@never_cache
@require_GET
def healthz(request):
    """Monitor the monitor: 503 when the database is unreachable, the sweeper is late, due
    notifications are not being sent, or a check's evaluation failed in the last 15 minutes."""
    db_ok, db_detail = database_ok()
    broker_ok, broker_detail = health.broker_ok()
    lag = health.sweeper_lag_seconds() if db_ok else None
    max_lag = 3 * settings.SWEEP_INTERVAL
    sweeper_ok = lag is not None and lag <= max_lag
    delivery_lag = health.delivery_lag_seconds() if db_ok else None
    max_delivery_lag = health.MAX_DELIVERY_LAG.total_seconds()
    deliveries_ok = delivery_lag is not None and delivery_lag <= max_delivery_lag
    evaluation = health.evaluation_failures() if db_ok else None
    evaluation_ok = evaluation is not None and evaluation["checks"] == 0
    healthy = db_ok and sweeper_ok and deliveries_ok and evaluation_ok
    body = {
        "status": "ok" if healthy else "unhealthy",
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
        "sweeper": {
            "ok": sweeper_ok,
            "lag_seconds": None if lag is None else round(lag, 3),
            "max_lag_seconds": max_lag,
        },
        "deliveries": {
            "ok": deliveries_ok,
            "lag_seconds": None if delivery_lag is None else round(delivery_lag, 3),
            "max_lag_seconds": max_delivery_lag,
        },
        "blind_episode": _jsonable(health.recent_blind_episode()) if db_ok else None,
        "evaluation": {"ok": evaluation_ok, "failed_lately": evaluation},
    }
    return JsonResponse(body, status=200 if healthy else 503)
