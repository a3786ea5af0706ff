"""Accounts and team management: sign up, password reset (Django's views with our templates
and our SITE_URL in the link), members and roles, invitations by email link.

Owners manage the team; every member may see who else is in it. Lookups go through
apps/teams/access.py: another team is a 404, too low a role a 403."""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from apps.clock import database_now

from . import services, throttle
from .access import require_role
from .current import SESSION_KEY, dashboard_login_required
from .forms import AccountForm, InviteForm, RoleForm, SignUpForm
from .invitations import InvalidInvitation, make_invitation_token, read_invitation_token
from .models import Invitation, Membership
from .report_periods import Frequency
from .report_tokens import InvalidUnsubscribeToken, read_unsubscribe_token
from .tasks import send_password_reset_task

logger = logging.getLogger(__name__)


def refuse_throttled(request, template: str, context: dict, limit: throttle.Limit):
    """429 on the page the visitor was using, saying that nothing was done and how long to
    wait; the same words whoever the attempt was about."""
    context["throttled"] = (
        f"Too many attempts: nothing was done. Wait {limit.describe_wait()} and try again."
    )
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(int(limit.window.total_seconds()))
    return response


def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard:check-list")
    if request.method == "POST":
        attempt = (
            (throttle.SIGNUP_PER_ADDRESS, throttle.client_address(request)),
            (throttle.SIGNUP_PER_EMAIL, request.POST.get("email", "")),
        )
        if limit := throttle.exceeded(*attempt):
            return refuse_throttled(
                request, "registration/signup.html", {"form": SignUpForm()}, limit
            )
        throttle.count(*attempt)
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        membership = services.sign_up(
            username=data["username"],
            email=data["email"],
            password=data["password1"],
            team_name=data["team_name"],
        )
        login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_KEY] = membership.team_id
        messages.success(request, f"Welcome! You own the team “{membership.team.name}”.")
        return redirect("dashboard:check-list")
    status = 400 if form.errors else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


class LoginView(auth_views.LoginView):
    """Django's log-in view, rate limited (apps/teams/throttle.py): every attempt counts per
    client address, failures count per username."""

    def post(self, request, *args, **kwargs):
        attempt = (
            (throttle.LOGIN_PER_ADDRESS, throttle.client_address(request)),
            (throttle.LOGIN_FAILURES_PER_ACCOUNT, request.POST.get("username", "")),
        )
        if limit := throttle.exceeded(*attempt):
            context = self.get_context_data(form=self.get_form_class()(request))
            return refuse_throttled(request, self.template_name, context, limit)
        throttle.count(attempt[0])
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        throttle.count((throttle.LOGIN_FAILURES_PER_ACCOUNT, form.data.get("username", "")))
        return super().form_invalid(form)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset view, rate limited, that sends nothing itself: the worker does
    (apps/teams/password_reset.py), so known and unknown addresses cost the request the same.
    The emailed link starts with SITE_URL, never with the request's Host header (which an
    attacker could set to their own domain)."""

    def post(self, request, *args, **kwargs):
        # Every address given counts, known or not: a refusal tells nothing about accounts.
        attempt = (
            (throttle.RESET_PER_ADDRESS, throttle.client_address(request)),
            (throttle.RESET_PER_EMAIL, request.POST.get("email", "")),
        )
        if limit := throttle.exceeded(*attempt):
            context = self.get_context_data(form=self.get_form_class()())
            return refuse_throttled(request, self.template_name, context, limit)
        throttle.count(*attempt)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        # The same work for every address: the worker looks the account up and mails it.
        email = form.cleaned_data["email"]
        transaction.on_commit(lambda: _enqueue_password_reset(email))
        return HttpResponseRedirect(self.get_success_url())


def _enqueue_password_reset(email: str) -> None:
    try:
        send_password_reset_task.delay(email)
    except Exception:
        # The broker is down: the visitor sees the usual page (a different one would tell
        # whether the account exists) and can ask again.
        logger.exception("could not enqueue a password reset")


def _members_context(membership, invite_form=None):
    team = membership.team
    return {
        "team": team,
        "membership": membership,
        "is_owner": membership.has_role(Membership.Role.OWNER),
        "memberships": team.memberships.select_related("user").order_by("user__username"),
        "invitations": [i for i in team.invitations.select_related("invited_by") if i.is_pending],
        "invite_form": invite_form or InviteForm(),
        "roles": Membership.Role.choices,
    }


@dashboard_login_required
def members(request, team_id):
    membership = require_role(request.user, team_id, Membership.Role.VIEWER)
    return render(request, "teams/members.html", _members_context(membership))


@dashboard_login_required
@require_POST
def change_role(request, team_id, membership_id):
    owner = require_role(request.user, team_id, Membership.Role.OWNER)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["role"][0])
        return redirect("teams:members", team_id)
    try:
        changed = services.change_role(
            team=owner.team, membership_id=membership_id, role=form.cleaned_data["role"]
        )
    except Membership.DoesNotExist:
        raise Http404("No such member") from None
    except services.TeamRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{changed.user.username} is now {changed.get_role_display()}.")
    return redirect("teams:members", team_id)


@dashboard_login_required
@require_POST
def remove_member(request, team_id, membership_id):
    owner = require_role(request.user, team_id, Membership.Role.OWNER)
    try:
        removed = services.remove_member(team=owner.team, membership_id=membership_id)
    except Membership.DoesNotExist:
        raise Http404("No such member") from None
    except services.TeamRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{removed.user.username} was removed from the team.")
        if removed.user_id == request.user.id:
            return redirect("dashboard:check-list")
    return redirect("teams:members", team_id)


def invitation_url(invitation: Invitation) -> str:
    path = reverse("teams:accept-invitation", args=[make_invitation_token(invitation.id)])
    return f"{settings.SITE_URL}{path}"


def _send_invitation(invitation: Invitation) -> None:
    context = {"invitation": invitation, "url": invitation_url(invitation)}
    send_mail(
        subject=render_to_string("emails/invitation_subject.txt", context).strip(),
        message=render_to_string("emails/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


@dashboard_login_required
@require_POST
def invite(request, team_id):
    owner = require_role(request.user, team_id, Membership.Role.OWNER)
    form = InviteForm(request.POST)
    if not form.is_valid():
        context = _members_context(owner, invite_form=form)
        return render(request, "teams/members.html", context, status=400)
    invitation = services.invite_member(
        team=owner.team,
        email=form.cleaned_data["email"],
        role=form.cleaned_data["role"],
        invited_by=request.user,
        now=database_now(),
    )
    transaction.on_commit(lambda: _send_invitation(invitation))
    messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("teams:members", team_id)


@dashboard_login_required
@require_POST
def revoke_invitation(request, team_id, invitation_id):
    owner = require_role(request.user, team_id, Membership.Role.OWNER)
    try:
        services.revoke_invitation(team=owner.team, invitation_id=invitation_id, now=database_now())
    except Invitation.DoesNotExist:
        raise Http404("No such invitation") from None
    messages.success(request, "Invitation withdrawn.")
    return redirect("teams:members", team_id)


def accept_invitation(request, token):
    """GET shows the invitation; POST accepts it as the signed-in user, or, for a visitor,
    creates an account for the invited address first. A bad link is a 400 with the reason."""
    try:
        invitation = services.pending_invitation(read_invitation_token(token))
    except InvalidInvitation as exc:
        return render(request, "teams/invitation.html", {"problem": str(exc)}, status=400)
    form = None
    if not request.user.is_authenticated:
        form = AccountForm(request.POST if request.method == "POST" else None)
    context = {"invitation": invitation, "form": form}
    if request.method != "POST":
        return render(request, "teams/invitation.html", context)
    try:
        if form is None:
            membership = services.accept_invitation(
                invitation_id=invitation.id, user=request.user, now=database_now()
            )
        elif form.is_valid():
            membership = services.sign_up_and_accept(
                invitation_id=invitation.id,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                now=database_now(),
            )
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        else:
            return render(request, "teams/invitation.html", context, status=400)
    except InvalidInvitation as exc:
        return render(request, "teams/invitation.html", {"problem": str(exc)}, status=400)
    request.session[SESSION_KEY] = membership.team_id
    messages.success(request, f"You joined “{membership.team.name}” as {membership.role}.")
    return redirect("dashboard:check-list")


# No login: the signed token is the authority, as with the alert emails' action links. GET only
# shows a button (mail scanners open links; they must not unsubscribe anyone); POST turns the
# reports off, and is exempt from CSRF so that a mail client's one-click unsubscribe (RFC 8058,
# the List-Unsubscribe-Post header) works too.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_from_reports(request, token):
    try:
        user_id = read_unsubscribe_token(token)
    except InvalidUnsubscribeToken as exc:
        return render(request, "teams/report_unsubscribe.html", {"problem": str(exc)}, status=400)
    if request.method == "POST" and not services.set_report_frequency(
        user_id=user_id, frequency=Frequency.OFF
    ):
        problem = "This link is not valid: its account no longer exists."
        return render(request, "teams/report_unsubscribe.html", {"problem": problem}, status=400)
    return render(request, "teams/report_unsubscribe.html", {"done": request.method == "POST"})
