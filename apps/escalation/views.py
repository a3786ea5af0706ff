"""Pages for escalation policies, rotations, silences and maintenance windows. Lists and new
objects belong to the team chosen in the dashboard; an object's own page uses the object's team,
so another team's object is a 404. Admins and owners edit policies, rotations and maintenance
windows; members may also create and expire silences; viewers read."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.checks.models import Check
from apps.clock import database_now
from apps.teams.access import require_role
from apps.teams.current import current_membership, dashboard_login_required
from apps.teams.models import Membership

from . import actions, holds, services
from .forms import (
    MAX_STEPS,
    MaintenanceWindowForm,
    MatchersForm,
    OverrideForm,
    PolicyChecksForm,
    PolicyForm,
    RotationForm,
    SilenceForm,
    StepForm,
    target_choices,
)
from .models import EscalationPolicy, EscalationStep, MaintenanceWindow, Rotation, Silence
from .rotation import handoffs, on_call

ADMIN, MEMBER, VIEWER = Membership.Role.ADMIN, Membership.Role.MEMBER, Membership.Role.VIEWER
STEP_OPERATIONS = ("remove", "up", "down")


def _submitted(request):
    """The POST data, or None on GET: an empty POST is still a submission, to be refused."""
    return request.POST if request.method == "POST" else None


def scoped(request, model, pk, minimum=VIEWER, **lookup):
    """The object if the user is in its team with the role, else 404 (or 403 inside the team)."""
    obj = get_object_or_404(model.objects.select_related("team"), pk=pk, **lookup)
    return obj, require_role(request.user, obj.team_id, minimum)


def team_membership(request, minimum=VIEWER) -> Membership:
    membership = current_membership(request)
    return require_role(request.user, membership.team_id, minimum)


def _create_page(request, form_class, *, template: str, detail: str):
    """A page that creates one of the team's objects (admins only): a valid submission is
    saved and its detail page opens; a refused one comes back with its errors."""
    membership = team_membership(request, ADMIN)
    form = form_class(_submitted(request), team=membership.team)
    if request.method == "POST" and form.is_valid():
        return redirect(detail, form.save().id)
    context = {"form": form, "team": membership.team}
    return render(request, template, context, status=400 if form.errors else 200)


def _settings_form(request, obj, form_class):
    """The object's own settings form: bound to a POST (which needs the admin role) or unbound
    on GET. Returns the form and whether it was valid and saved."""
    if request.method == "POST":
        require_role(request.user, obj.team_id, ADMIN)
    form = form_class(_submitted(request), instance=obj, team=obj.team)
    saved = request.method == "POST" and form.is_valid()
    if saved:
        form.save()
    return form, saved


def _team_form(request, form_class, minimum, **kwargs):
    """A form of the current team's list page (silences, windows): anyone in the team sees it,
    submitting it needs `minimum`. Returns the membership, the form and whether it is valid."""
    membership = team_membership(request)
    form = form_class(_submitted(request), team=membership.team, **kwargs)
    if request.method == "POST":
        require_role(request.user, membership.team_id, minimum)
    return membership, form, request.method == "POST" and form.is_valid()


def _delete(request, model, pk, *, then: str, message: str = ""):
    """Delete one of the team's objects (admins only) and go back to its list."""
    obj, _ = scoped(request, model, pk, ADMIN)
    obj.delete()
    if message:
        messages.success(request, message.format(obj=obj))
    return redirect(then)


@dashboard_login_required
@require_GET
def overview(request):
    membership = team_membership(request)
    team = membership.team
    policies = list(EscalationPolicy.objects.filter(team=team).prefetch_related("steps"))
    for policy in policies:
        policy.covered_count = checks_using(policy).count()
    context = {
        "team": team,
        "can_edit": membership.has_role(ADMIN),
        "policies": policies,
        "rotations": Rotation.objects.filter(team=team).prefetch_related("members__user"),
    }
    return render(request, "escalation/overview.html", context)


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def policy_create(request):
    return _create_page(
        request,
        PolicyForm,
        template="escalation/policy_form.html",
        detail="escalation:policy-detail",
    )


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def policy_detail(request, pk):
    policy, membership = scoped(request, EscalationPolicy, pk)
    form, saved = _settings_form(request, policy, PolicyForm)
    if saved:
        messages.success(request, "Policy saved. Incidents already open keep the old copy.")
        return redirect("escalation:policy-detail", policy.id)
    context = {
        "policy": policy,
        "steps": described_steps(policy),
        "form": form,
        "step_form": StepForm(team=policy.team),
        "checks_form": PolicyChecksForm(team=policy.team, policy=policy),
        "can_edit": membership.has_role(ADMIN),
    }
    return render(
        request, "escalation/policy_detail.html", context, status=400 if form.errors else 200
    )


def checks_using(policy: EscalationPolicy):
    """The team's checks whose incidents `policy` handles: those naming it and, for the
    default, those naming none."""
    checks = Check.objects.filter(team_id=policy.team_id, escalation_policy=policy)
    if policy.is_default:
        checks |= Check.objects.filter(team_id=policy.team_id, escalation_policy__isnull=True)
    return checks


def described_steps(policy) -> list[tuple]:
    """(step, target labels) in order; a target that no longer exists says so."""
    labels = dict(target_choices(policy.team))
    return [
        (
            step,
            [labels.get(f"{t['kind']}:{t['id']}", f"{t['kind']} (deleted)") for t in step.targets],
        )
        for step in policy.steps.all()
    ]


def _steps_response(request, policy, step_form, *, status=200, steps_error=""):
    context = {
        "policy": policy,
        "steps": described_steps(policy),
        "step_form": step_form,
        "steps_error": steps_error,
        "can_edit": True,
    }
    template = "escalation/policy_detail.html"
    if request.htmx:
        # htmx swaps 2xx answers only (base.html's responseHandling): the refused form comes
        # back as a 200 partial that shows its errors in place.
        template += "#steps"
        status = 200
    elif status == 200:
        return redirect("escalation:policy-detail", policy.id)
    return render(
        request,
        template,
        context
        | {
            "form": PolicyForm(instance=policy, team=policy.team),
            "checks_form": PolicyChecksForm(team=policy.team, policy=policy),
        },
        status=status,
    )


@dashboard_login_required
@require_POST
def step_add(request, pk):
    policy, _ = scoped(request, EscalationPolicy, pk, ADMIN)
    form = StepForm(request.POST, team=policy.team)
    if not form.is_valid():
        return _steps_response(request, policy, form, status=400)
    try:
        services.add_step(
            policy=policy,
            wait=form.cleaned_data["wait"],
            targets=form.targets_json(),
            severities=" ".join(sorted(form.cleaned_data["severities"])),
            limit=MAX_STEPS,
        )
    except services.StepLimitReached as exc:
        form.add_error(None, str(exc))
        return _steps_response(request, policy, form, status=400)
    return _steps_response(request, policy, StepForm(team=policy.team))


@dashboard_login_required
@require_POST
def step_change(request, pk, step_id, operation):
    policy, _ = scoped(request, EscalationPolicy, pk, ADMIN)
    step = get_object_or_404(EscalationStep, id=step_id, policy=policy)
    if operation not in STEP_OPERATIONS:
        raise Http404("No such operation")
    form = StepForm(team=policy.team)
    try:
        services.change_step(step=step, operation=operation)
    except services.LastStepOfDefault as exc:
        return _steps_response(request, policy, form, status=400, steps_error=str(exc))
    return _steps_response(request, policy, form)


@dashboard_login_required
@require_POST
def policy_checks(request, pk):
    policy, _ = scoped(request, EscalationPolicy, pk, ADMIN)
    form = PolicyChecksForm(request.POST, team=policy.team, policy=policy)
    if not form.is_valid():
        messages.error(request, "Choose checks of this team.")
        return redirect("escalation:policy-detail", policy.id)
    services.assign_policy(policy=policy, check_ids=form.cleaned_data["checks"])
    messages.success(request, "Checks updated. Incidents already open keep their policy.")
    return redirect("escalation:policy-detail", policy.id)


@dashboard_login_required
@require_POST
def policy_delete(request, pk):
    message = "Policy “{obj.name}” deleted; its checks use the default."
    return _delete(request, EscalationPolicy, pk, then="escalation:overview", message=message)


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def rotation_create(request):
    return _create_page(
        request,
        RotationForm,
        template="escalation/rotation_form.html",
        detail="escalation:rotation-detail",
    )


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def rotation_detail(request, pk):
    rotation, membership = scoped(request, Rotation, pk)
    form, saved = _settings_form(request, rotation, RotationForm)
    if saved:
        return redirect("escalation:rotation-detail", rotation.id)
    return _rotation_page(request, rotation, membership, form=form)


def _username(user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = get_user_model().objects.filter(id=user_id).first()
    return user.get_username() if user else None


def _rotation_page(request, rotation, membership, *, form=None, override_form=None):
    now = database_now()
    spec = rotation.spec()
    context = {
        "rotation": rotation,
        "form": form or RotationForm(instance=rotation, team=rotation.team),
        "override_form": override_form or OverrideForm(team=rotation.team),
        "overrides": rotation.overrides.select_related("user").filter(ends_at__gt=now),
        "on_call": _username(on_call(spec, now)),
        "handoffs": [(at, _username(user_id)) for at, user_id in handoffs(spec, now)],
        "can_edit": membership.has_role(ADMIN),
    }
    errors = (form and form.errors) or (override_form and override_form.errors)
    return render(
        request, "escalation/rotation_detail.html", context, status=400 if errors else 200
    )


@dashboard_login_required
@require_POST
def override_add(request, pk):
    rotation, membership = scoped(request, Rotation, pk, ADMIN)
    form = OverrideForm(request.POST, team=rotation.team)
    if not form.is_valid():
        return _rotation_page(request, rotation, membership, override_form=form)
    data = form.cleaned_data
    services.add_override(
        rotation=rotation,
        user_id=data["user"],
        starts_at=data["starts_at"],
        ends_at=data["ends_at"],
    )
    return redirect("escalation:rotation-detail", rotation.id)


@dashboard_login_required
@require_POST
def override_delete(request, pk, override_id):
    rotation, _ = scoped(request, Rotation, pk, ADMIN)
    get_object_or_404(rotation.overrides, id=override_id).delete()
    return redirect("escalation:rotation-detail", rotation.id)


@dashboard_login_required
@require_POST
def rotation_delete(request, pk):
    return _delete(request, Rotation, pk, then="escalation:overview")


# --- silences and maintenance windows ------------------------------------------------------------


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def silence_list(request):
    now = database_now()
    membership, form, valid = _team_form(request, SilenceForm, MEMBER, now=now)
    team = membership.team
    if valid:
        actions.create_silence(
            team_id=team.id,
            starts_at=form.cleaned_data["starts_at"],
            ends_at=form.cleaned_data["ends_at"],
            matchers=form.matchers(),
            user=request.user,
            comment=form.cleaned_data["comment"],
            now=now,
        )
        messages.success(request, "Silence saved.")
        return redirect("escalation:silence-list")
    silences = Silence.objects.filter(team=team).select_related("created_by")
    context = {
        "team": team,
        "form": form,
        "active": with_covered_checks(silences.active_at(now), team.id),
        "upcoming": with_covered_checks(silences.upcoming(now), team.id),
        "silenced_now": holds.silenced_now(team.id, now),
        "can_silence": membership.has_role(MEMBER),
    }
    return render(request, "escalation/silences.html", context, status=400 if form.errors else 200)


def with_covered_checks(silences, team_id: int) -> list[Silence]:
    """The silences, each with `covered`: the team's checks its matchers match now."""
    silences = list(silences)
    for silence in silences:
        silence.covered = holds.matching_checks(team_id, silence.matchers)
    return silences


@dashboard_login_required
@require_GET
def silence_preview(request):
    """The checks the matchers in the query string would cover (the form's live preview)."""
    membership = team_membership(request)
    form = MatchersForm(request.GET, team=membership.team)
    form.is_valid()  # the comment may be missing here; the matchers are what counts
    matchers = form.matchers() if hasattr(form, "cleaned_data") else {}
    checks = holds.matching_checks(membership.team_id, matchers)
    return render(request, "escalation/_silence_preview.html", {"checks": checks})


@dashboard_login_required
@require_POST
def silence_expire(request, pk):
    silence, _ = scoped(request, Silence, pk, MEMBER)
    actions.expire_silence(silence=silence, user=request.user, now=database_now())
    messages.success(request, "Silence expired: still-failing incidents are notified now.")
    return redirect("escalation:silence-list")


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def maintenance_list(request):
    now = database_now()
    membership, form, valid = _team_form(request, MaintenanceWindowForm, ADMIN)
    team = membership.team
    if valid:
        services.create_maintenance_window(
            team=team, data=form.cleaned_data, matchers=form.matchers(), user=request.user, now=now
        )
        return redirect("escalation:maintenance-list")
    windows = [
        (w, w.spec().window_at(now), w.spec().next_windows(now, 3))
        for w in MaintenanceWindow.objects.filter(team=team).select_related("created_by")
    ]
    context = {
        "team": team,
        "form": form,
        "windows": windows,
        "can_edit": membership.has_role(ADMIN),
    }
    return render(
        request, "escalation/maintenance.html", context, status=400 if form.errors else 200
    )


@dashboard_login_required
@require_POST
def maintenance_delete(request, pk):
    return _delete(request, MaintenanceWindow, pk, then="escalation:maintenance-list")
