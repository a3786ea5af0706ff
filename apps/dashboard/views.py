"""The HTMX dashboard. Views stay thin: find the object through a team-scoped helper, call one
service, render (a partial when htmx asks)."""

from datetime import UTC
from functools import wraps
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from apps.checks.clock import database_now
from apps.checks.models import Check, Ping
from apps.checks.schedule import ScheduleError, ScheduleKind
from apps.incidents.models import Incident
from apps.incidents.services import IncidentActionError, acknowledge_incident, resolve_incident
from apps.teams.access import require_role
from apps.teams.models import Membership

from . import health
from .current_team import choose_team, current_membership
from .forms import CheckForm, SchedulePreviewForm, TeamSwitchForm

INCIDENT_ACTIONS = {"acknowledge": acknowledge_incident, "resolve": resolve_incident}


def dashboard_login_required(view):
    """login_required that also copes with htmx: a poll whose session expired must not swap the
    login page into the status table, so htmx is told to load the login page instead."""

    protected = login_required(view)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated and request.htmx:
            page = request.htmx.current_url_abs_path or request.get_full_path()
            return HttpResponseClientRedirect(redirect_to_login(page).url)
        return protected(request, *args, **kwargs)

    return wrapper


def get_check_for_user(user, check_id) -> tuple[Check, Membership]:
    """The check if the user is in its team, else 404 (whether or not it exists)."""
    check = Check.objects.select_related("team").filter(id=check_id).first()
    if check is None:
        raise Http404("No such check")
    return check, require_role(user, check.team_id, Membership.Role.VIEWER)


def get_incident_for_user(user, incident_id, minimum=Membership.Role.VIEWER):
    incident = get_object_or_404(Incident.objects.select_related("owner__team"), id=incident_id)
    return incident, require_role(user, incident.owner.team_id, minimum)


@dashboard_login_required
@require_GET
@vary_on_headers("HX-Request")
def check_list(request):
    membership = current_membership(request)
    checks = Check.objects.filter(team=membership.team).order_by("name")
    counts = dict(checks.values_list("status").annotate(n=Count("id")).order_by())
    context = {
        "membership": membership,
        "team": membership.team,
        "checks": checks,
        "counts": [
            (status, label, counts.get(status, 0)) for status, label in Check.Status.choices
        ],
        "can_edit": membership.has_role(Membership.Role.ADMIN),
    }
    template = "dashboard/check_list.html"
    if request.htmx:
        template += "#check-table"
    return render(request, template, context)


@dashboard_login_required
def check_create(request):
    membership = current_membership(request)
    if not membership.has_role(Membership.Role.ADMIN):
        raise PermissionDenied("Only admins and owners can create checks.")
    # An empty POST is still a submission (to be refused), not a first visit.
    form = CheckForm(request.POST if request.method == "POST" else None, team=membership.team)
    if request.method == "POST" and form.is_valid() and (check := form.save()):
        return redirect("dashboard:check-detail", check.id)
    status = 400 if form.errors else 200
    context = {"form": form, "team": membership.team}
    return render(request, "dashboard/check_form.html", context, status=status)


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
        context["times"] = [
            (moment.astimezone(zone), moment) for moment in schedule.upcoming(database_now(), 5)
        ]
    return render(request, "dashboard/_schedule_preview.html", context)


@dashboard_login_required
@require_GET
@vary_on_headers("HX-Request")
def check_detail(request, check_id):
    check, membership = get_check_for_user(request.user, check_id)
    context = {
        "check": check,
        "membership": membership,
        "ping_url": f"{settings.SITE_URL}/ping/{check.ping_token}",
        "slug_url": f"{settings.SITE_URL}/ping/{check.team.ping_key}/{check.slug}",
        "pings": check.pings.all()[:50],
        "flips": check.flips.all()[:20],
        "runs": check.runs.all()[:20],
        "incidents": check.incidents.select_related("acknowledged_by", "resolved_by")[:20],
        "can_act": membership.has_role(Membership.Role.MEMBER),
    }
    template = "dashboard/check_detail.html"
    if request.htmx:
        template += "#check-status"
    return render(request, template, context)


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
@require_GET
def incident_detail(request, incident_id):
    incident, membership = get_incident_for_user(request.user, incident_id)
    context = {
        "incident": incident,
        "notifications": incident.notifications.order_by("created_at"),
        "can_act": membership.has_role(Membership.Role.MEMBER),
    }
    return render(request, "dashboard/incident_detail.html", context)


@dashboard_login_required
@require_POST
def incident_action(request, incident_id, action):
    """Acknowledge or resolve. htmx gets the incident's row back (409 with the reason when the
    action no longer applies); a plain form post is redirected to the incident page."""
    incident, _ = get_incident_for_user(request.user, incident_id, Membership.Role.MEMBER)
    service = INCIDENT_ACTIONS.get(action)
    if service is None:
        raise Http404("No such action")
    error = None
    try:
        incident = service(incident_id=incident.id, user=request.user, now=database_now())
    except IncidentActionError as exc:
        error = str(exc)
        incident.refresh_from_db()
    if request.htmx:
        context = {"incident": incident, "can_act": True, "error": error, "after_action": True}
        status = 409 if error else 200
        return render(request, "dashboard/_incident_row.html", context, status=status)
    if error:
        messages.error(request, error)
    return redirect("dashboard:incident-detail", incident.id)


@dashboard_login_required
@require_POST
def switch_team(request):
    """Show another of the user's teams; 404 for a team the user is not in."""
    form = TeamSwitchForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("team_id must be a team id.", content_type="text/plain")
    choose_team(request, form.cleaned_data["team_id"])
    return redirect("dashboard:check-list")


def _jsonable(episode):
    if episode is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in episode.items()}


@never_cache
@require_GET
def healthz(request):
    """Monitor the monitor: 503 when the database is unreachable or the sweeper is late."""
    db_ok, db_detail = health.database_ok()
    broker_ok, broker_detail = health.broker_ok()
    lag = health.sweeper_lag_seconds() if db_ok else None
    max_lag = 3 * settings.SWEEP_INTERVAL
    sweeper_ok = lag is not None and lag <= max_lag
    body = {
        "status": "ok" if db_ok and sweeper_ok else "unhealthy",
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
        "sweeper": {
            "ok": sweeper_ok,
            "lag_seconds": None if lag is None else round(lag, 3),
            "max_lag_seconds": max_lag,
        },
        "blind_episode": _jsonable(health.recent_blind_episode()) if db_ok else None,
    }
    return JsonResponse(body, status=200 if db_ok and sweeper_ok else 503)
