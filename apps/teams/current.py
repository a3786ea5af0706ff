"""Who is signed in and which team they are looking at: the login guard every page uses, and
the team a signed-in user is looking at. A user may belong to several teams; the session
remembers which one the dashboard shows (`team_id`), and only a team the user belongs to can be
chosen. Lists and forms use this team; pages of one object (a check, an incident) use that
object's team instead, through the scoped helpers in apps/teams/access.py."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django_htmx.http import HttpResponseClientRedirect

from .access import membership_for
from .models import Membership

SESSION_KEY = "team_id"


def memberships_of(user):
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def current_membership(request) -> Membership:
    """The membership chosen in the session, else the user's first team by name.

    A stale choice (the user left that team) falls back silently. Raises PermissionDenied when
    the user belongs to no team at all."""
    memberships = memberships_of(request.user)
    chosen = request.session.get(SESSION_KEY)
    membership = memberships.filter(team_id=chosen).first() if chosen else None
    membership = membership or memberships.first()
    if membership is None:
        raise PermissionDenied("You are not a member of any team yet.")
    return membership


def choose_team(request, team_id: int) -> Membership:
    """Remember `team_id` in the session; 404 when the user is not in that team."""
    membership = membership_for(request.user, team_id)
    request.session[SESSION_KEY] = membership.team_id
    return membership


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
