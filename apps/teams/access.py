"""Team-scoped lookups. Every view finds its objects through here, so that another team's
object is a 404 (not a 403, which would confirm that it exists)."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Membership, Team


def teams_for_user(user):
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user)


def membership_for(user, team_id) -> Membership:
    """The user's membership of the team, or 404 when the user is not in it."""
    if not user.is_authenticated:
        raise Http404("No such team")
    try:
        return Membership.objects.select_related("team").get(user=user, team_id=team_id)
    except Membership.DoesNotExist:
        raise Http404("No such team") from None


def require_role(user, team_id, minimum: Membership.Role) -> Membership:
    """404 outside the team, 403 inside it without the role."""
    membership = membership_for(user, team_id)
    if not membership.has_role(minimum):
        raise PermissionDenied(f"This needs the {minimum.label.lower()} role or higher.")
    return membership
