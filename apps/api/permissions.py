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


class HasReadWriteTeamKey(HasTeamKey):
    """A read-write team key, even for reads: for answers that may carry secrets (ping bodies
    often hold a job's log) or that lead to them (channels), as Healthchecks keeps them from
    read-only keys."""

    message = "This endpoint needs a read-write API key."

    def has_permission(self, request, view):
        return isinstance(request.user, TeamKey) and not request.user.is_read_only
