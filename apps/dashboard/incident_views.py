"""The incident pages of the dashboard: the open, acknowledged and resolved lists, the incident
page, and the actions a member takes in place (acknowledge, resolve, silence the check)."""

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from apps.clock import database_now
from apps.escalation.actions import EscalationActionError, silence_incident_check
from apps.escalation.holds import covering_silence
from apps.incidents.models import Incident
from apps.incidents.services import (
    MAX_NOTE_LENGTH,
    IncidentActionError,
    NoteError,
    acknowledge_incident,
    add_incident_note,
    resolve_incident,
)
from apps.incidents.tokens import SILENCE_ACTIONS
from apps.notifications.flush import held_notifications
from apps.teams.access import require_role
from apps.teams.current import current_membership, dashboard_login_required
from apps.teams.models import Membership

from .views import wants_partial

INCIDENT_ACTIONS = {"acknowledge": acknowledge_incident, "resolve": resolve_incident}
# The silence buttons' values; the same lengths as the alert links' "silence for" actions.
SILENCE_DURATIONS = {
    "1h": SILENCE_ACTIONS["silence_1h"],
    "4h": SILENCE_ACTIONS["silence_4h"],
    "24h": SILENCE_ACTIONS["silence_24h"],
}


def get_incident_for_user(user, incident_id, minimum=Membership.Role.VIEWER):
    """The incident if the user is in its check's team (404 otherwise, whether or not it
    exists), and the user's membership; 403 without the `minimum` role."""
    incident = get_object_or_404(Incident.objects.select_related("owner__team"), id=incident_id)
    return incident, require_role(user, incident.owner.team_id, minimum)


INCIDENT_LISTS = {
    "open": ("Open", [Incident.State.TRIGGERED]),
    "acknowledged": ("Acknowledged", [Incident.State.ACKNOWLEDGED]),
    "resolved": ("Resolved", [Incident.State.RESOLVED]),
}
INCIDENT_LIST_LIMIT = 100


@dashboard_login_required
@require_GET
@vary_on_headers("HX-Request", "HX-History-Restore-Request")
def incident_list(request):
    membership = current_membership(request)
    shown = request.GET.get("state", "open")
    if shown not in INCIDENT_LISTS:
        messages.error(request, "Unknown list; showing open incidents.")
        shown = "open"
    team_incidents = Incident.objects.filter(owner__team=membership.team)
    counts = dict(team_incidents.values_list("state").annotate(n=Count("id")).order_by())
    incidents = (
        team_incidents.filter(state__in=INCIDENT_LISTS[shown][1])
        .select_related("owner", "acknowledged_by", "resolved_by")
        .order_by("-opened_at", "-id")[:INCIDENT_LIST_LIMIT]
    )
    context = {
        "team": membership.team,
        "shown": shown,
        "lists": [
            (key, label, sum(counts.get(state, 0) for state in states))
            for key, (label, states) in INCIDENT_LISTS.items()
        ],
        "incidents": incidents,
        "limit": INCIDENT_LIST_LIMIT,
        "can_act": membership.has_role(Membership.Role.MEMBER),
        "show_check": True,
    }
    template = "dashboard/incident_list.html"
    if wants_partial(request):
        template += "#incident-table"
    return render(request, template, context)


def check_cover(incident, now):
    """What silences the incident's check now (a silence or a maintenance window), for an open
    incident; None otherwise. An acknowledged incident is not held by a silence (nobody is
    being notified anyway), so its row would not say that the check is silenced without this."""
    return covering_silence(incident.owner, now) if incident.is_open else None


def notifications_with_holds(incident, now):
    """The incident's notifications, each pending one with `held`: when its message goes out
    and why it waits (the grouping rules)."""
    held = held_notifications(incident, now=now)
    rows = list(incident.notifications.order_by("created_at", "id"))
    for row in rows:
        row.held = held.get(row.id)
    return rows


@dashboard_login_required
@require_GET
@vary_on_headers("HX-Request", "HX-History-Restore-Request")
def incident_detail(request, incident_id):
    incident, membership = get_incident_for_user(request.user, incident_id)
    now = database_now()
    context = {
        "incident": incident,
        "cover": check_cover(incident, now),
        "notifications": notifications_with_holds(incident, now),
        "can_act": membership.has_role(Membership.Role.MEMBER),
        "max_note_length": MAX_NOTE_LENGTH,
    }
    template = "dashboard/incident_detail.html"
    if wants_partial(request):
        template += "#incident-status"
    return render(request, template, context)


def _row_response(request, incident, error, *, action: str):
    """After an action: htmx gets the incident's row back (409 with the reason when the action
    no longer applied); a plain form post is redirected to the incident page."""
    if request.htmx:
        context = {
            "incident": incident,
            "cover": check_cover(incident, database_now()),
            "can_act": True,
            "error": error,
            "after_action": action,
            "show_check": request.POST.get("show_check") == "1",
        }
        status = 409 if error else 200
        return render(request, "dashboard/_incident_row.html", context, status=status)
    if error:
        messages.error(request, error)
    return redirect("dashboard:incident-detail", incident.id)


@dashboard_login_required
@require_POST
def incident_action(request, incident_id, action):
    """Acknowledge or resolve (members and up)."""
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
    return _row_response(request, incident, error, action=action)


@dashboard_login_required
@require_POST
def incident_silence(request, incident_id):
    """Silence the incident's check for 1, 4 or 24 hours (members and up), through the same
    service as the alert links: a silence matching this check alone, from now."""
    incident, _ = get_incident_for_user(request.user, incident_id, Membership.Role.MEMBER)
    duration = SILENCE_DURATIONS.get(request.POST.get("duration", ""))
    if duration is None:
        # Only a tampered form gets here; the value is not echoed back.
        return HttpResponseBadRequest(
            "Nothing was silenced: choose 1h, 4h or 24h.", content_type="text/plain"
        )
    error = None
    try:
        incident = silence_incident_check(
            incident_id=incident.id,
            duration=duration,
            user=request.user,
            now=database_now(),
            origin="the dashboard",
        )
    except EscalationActionError as exc:
        error = str(exc)
        incident.refresh_from_db()
    return _row_response(request, incident, error, action="silence")


@dashboard_login_required
@require_POST
def incident_note(request, incident_id):
    """Add a note to the incident's timeline (members and up). htmx gets the note form back,
    emptied, and a `note-added` event that refreshes the timeline at once; a refused note
    answers 422 with the form and the reason (base.html lets htmx show it). A plain form post
    goes back to the incident page."""
    incident, _ = get_incident_for_user(request.user, incident_id, Membership.Role.MEMBER)
    text = request.POST.get("text", "")
    error = None
    try:
        add_incident_note(incident_id=incident.id, user=request.user, text=text, now=database_now())
    except NoteError as exc:
        error = str(exc)
    if request.htmx:
        context = {
            "incident": incident,
            "note_error": error,
            "note_text": text[: MAX_NOTE_LENGTH * 2] if error else "",
            "max_note_length": MAX_NOTE_LENGTH,
        }
        response = render(
            request,
            "dashboard/incident_detail.html#note-form",
            context,
            status=422 if error else 200,
        )
        return response if error else trigger_client_event(response, "note-added")
    if error:
        messages.error(request, f"The note was not added: {error}")
    return redirect("dashboard:incident-detail", incident.id)
