"""The team's API keys page (/team/api-keys/): admins and owners create keys (the key itself is
shown once, only its hash is stored) and revoke them. Members and viewers get 403: a key acts
for the whole team, so only those who may edit checks may hand one out."""

from django import forms
from django.contrib import messages
from django.db.models import F
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from apps.api.keys import create_api_key, revoke_api_key
from apps.api.models import ApiKey
from apps.clock import database_now
from apps.teams.access import require_role
from apps.teams.current import current_membership, dashboard_login_required
from apps.teams.models import Membership

ADMIN = Membership.Role.ADMIN


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the key is for, e.g. “terraform” or “grafana”.",
        error_messages={"required": "Give the key a name."},
    )
    is_read_only = forms.BooleanField(
        required=False,
        label="Read-only",
        help_text="It can list and read, but not create, change, pause or delete anything.",
    )


def _admin_membership(request) -> Membership:
    membership = current_membership(request)
    return require_role(request.user, membership.team_id, ADMIN)


@never_cache  # the page that shows a new key must not stay in any cache
@dashboard_login_required
@require_http_methods(["GET", "POST"])
def api_keys(request):
    membership = _admin_membership(request)
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        new_key = create_api_key(
            team=membership.team,
            name=form.cleaned_data["name"],
            is_read_only=form.cleaned_data["is_read_only"],
        )
        form = ApiKeyForm()
    keys = ApiKey.objects.filter(team=membership.team).order_by(
        F("revoked_at").desc(nulls_first=True), "name", "id"
    )
    context = {"team": membership.team, "form": form, "keys": keys, "new_key": new_key}
    return render(request, "dashboard/api_keys.html", context, status=400 if form.errors else 200)


@dashboard_login_required
@require_POST
def api_key_revoke(request, key_id):
    membership = _admin_membership(request)
    try:
        revoked = revoke_api_key(team_id=membership.team_id, key_id=key_id, now=database_now())
    except ApiKey.DoesNotExist:
        raise Http404("No such key") from None
    if revoked:
        messages.success(request, "Key revoked: requests with it are refused from now on.")
    else:
        messages.error(request, "That key was already revoked.")
    return redirect("dashboard:api-keys")
