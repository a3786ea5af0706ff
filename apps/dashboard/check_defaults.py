"""The team's defaults for auto-provisioned checks (a ping with ?create=1 for an unknown slug)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from apps.checks.forms import CheckDefaultsForm
from apps.checks.models import CheckDefaults
from apps.teams.access import require_role
from apps.teams.current import dashboard_login_required
from apps.teams.models import Membership


@dashboard_login_required
def check_defaults(request, team_id):
    """The defaults of auto-provisioned checks and the team's limit: every member may look,
    admins may change them."""
    membership = require_role(request.user, team_id, Membership.Role.VIEWER)
    team, is_admin = membership.team, membership.has_role(Membership.Role.ADMIN)
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("Changing the check defaults needs the admin role or higher.")
        defaults, _ = CheckDefaults.objects.get_or_create(team=team)
        saved = {"max_checks": defaults.max_checks}  # the form writes into `defaults`
        form = CheckDefaultsForm(request.POST, instance=defaults, team=team)
        if form.is_valid():
            form.save()
            messages.success(request, "Check defaults saved.")
            return redirect("dashboard:check-defaults", team_id)
    else:
        defaults = CheckDefaults.objects.filter(team=team).first() or CheckDefaults(team=team)
        saved = {"max_checks": defaults.max_checks}
        form = CheckDefaultsForm(instance=defaults, team=team, read_only=not is_admin)
    context = {"team": team, "form": form, "is_admin": is_admin, "defaults": defaults}
    context.update(saved, check_count=team.checks.count())
    return render(
        request, "dashboard/check_defaults.html", context, status=400 if form.errors else 200
    )
