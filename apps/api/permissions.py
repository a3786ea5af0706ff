from rest_framework import permissions

from .authentication import TeamKey


class HasTeamKey(permissions.BasePermission):
    """A valid team key; read-only keys may only read."""

    message = "This API key is read-only."

    def has_permission(self, request, view):
        if not isinstance(request.user, TeamKey):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return not request.user.is_read_only
