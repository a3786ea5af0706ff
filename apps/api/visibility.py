"""Read-only keys never see a check's UUID. It is also the check's ping URL (one identity, as
in Healthchecks), and whoever has it can report the job as fine; read-only keys serve
dashboards and scrapers. Where an answer names a check, a read-only key gets the check's
`unique_key` (the SHA-1 of the UUID, Healthchecks' rule) instead, and may address the check by
it."""

from apps.checks.models import unique_key_of

UNIQUE_KEY_PATTERN = "[0-9a-fA-F]{40}"


def may_see_check_ids(request) -> bool:
    user = getattr(request, "user", None) if request is not None else None
    return not getattr(user, "is_read_only", False)


def shown_check_id(check_id, request) -> str:
    return str(check_id) if may_see_check_ids(request) else unique_key_of(check_id)


def find_by_unique_key(checks, key: str):
    """The check of `checks` (a team's queryset) whose unique_key is `key`, else None: a scan,
    as in Healthchecks (the key is a hash, not a column)."""
    key = key.lower()
    return next((check for check in checks if check.unique_key == key), None)
