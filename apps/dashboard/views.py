"""The HTMX dashboard. Views stay thin: find the object through a team-scoped helper, call one
service, render (a partial when htmx asks)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from apps.checks.clock import database_now
from apps.checks.models import Check
from apps.incidents.models import Incident
from apps.incidents.services import IncidentActionError, acknowledge_incident, resolve_incident
from apps.teams.access import require_role
from apps.teams.models import Membership

from . import health
from .forms import CheckForm


def current_membership(request) -> Membership:
    """The team the user is looking at: the one chosen in the session, else the first one."""
    memberships = Membership.objects.filter(user=request.user).select_related("team")
    chosen = request.session.get("team_id")
    membership = memberships.filter(team_id=chosen).first() if chosen else None
    membership = membership or memberships.order_by("team__name").first()
    if membership is None:
        raise PermissionDenied("You are not a member of any team yet.")
    return membership


def get_check_for_user(user, check_id) -> tuple[Check, Membership]:
    """The check if the user is in its team, else 404 (whether or not it exists)."""
    check = Check.objects.select_related("team").filter(id=check_id).first()
    if check is None:
        raise Http404("No such check")
    return check, require_role(user, check.team_id, Membership.Role.VIEWER)


def get_incident_for_user(user, incident_id, minimum=Membership.Role.VIEWER):
    incident = get_object_or_404(Incident.objects.select_related("owner__team"), id=incident_id)
    return incident, require_role(user, incident.owner.team_id, minimum)


@login_required
@require_GET
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


@login_required
def check_create(request):
    membership = current_membership(request)
    if not membership.has_role(Membership.Role.ADMIN):
        raise PermissionDenied("Only admins and owners can create checks.")
    form = CheckForm(request.POST or None, team=membership.team)
    if request.method == "POST" and form.is_valid():
        check = form.save()
        return redirect("dashboard:check-detail", check.id)
    return render(request, "dashboard/check_form.html", {"form": form, "team": membership.team})


@login_required
@require_GET
def check_detail(request, check_id):
    check, membership = get_check_for_user(request.user, check_id)
    ping_url = f"{settings.SITE_URL}/ping/{check.ping_token}"
    context = {
        "check": check,
        "membership": membership,
        "ping_url": ping_url,
        "slug_url": f"{settings.SITE_URL}/ping/{check.team.ping_key}/{check.slug}",
        "pings": check.pings.all()[:50],
        "flips": check.flips.all()[:20],
        "incidents": check.incidents.select_related("acknowledged_by", "resolved_by")[:20],
        "can_act": membership.has_role(Membership.Role.MEMBER),
    }
    template = "dashboard/check_detail.html"
    if request.htmx:
        template += "#check-status"
    return render(request, template, context)


@login_required
@require_GET
def incident_detail(request, incident_id):
    incident, membership = get_incident_for_user(request.user, incident_id)
    context = {
        "incident": incident,
        "notifications": incident.notifications.order_by("created_at"),
        "can_act": membership.has_role(Membership.Role.MEMBER),
    }
    return render(request, "dashboard/incident_detail.html", context)


@login_required
@require_POST
def incident_action(request, incident_id, action):
    incident, _ = get_incident_for_user(request.user, incident_id, Membership.Role.MEMBER)
    service = {"acknowledge": acknowledge_incident, "resolve": resolve_incident}.get(action)
    if service is None:
        raise Http404("No such action")
    error = None
    try:
        incident = service(incident_id=incident.id, user=request.user, now=database_now())
    except IncidentActionError as exc:
        error = str(exc)
        incident.refresh_from_db()
    context = {"incident": incident, "can_act": True, "error": error}
    if request.htmx:
        return render(
            request, "dashboard/_incident_row.html", context, status=409 if error else 200
        )
    return redirect(reverse("dashboard:incident-detail", args=[incident.id]))


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
