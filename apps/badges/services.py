"""From a badge token to the badge it shows, reading the current statuses."""

from apps.checks.models import Check
from apps.teams.models import Team

from .render import Badge, check_badge, tag_badge
from .tokens import CheckBadgeClaim, TagBadgeClaim, read_badge_token


def badge_for_token(token: str) -> Badge | None:
    """The badge for `token` now, or None when the token is invalid or its check or team is
    gone. One query for a check; one for a tag (two when it has no checks)."""
    claim = read_badge_token(token)
    if isinstance(claim, CheckBadgeClaim):
        found = Check.objects.filter(pk=claim.check_id).values_list("name", "status").first()
        return check_badge(*found) if found else None
    if isinstance(claim, TagBadgeClaim):
        return _tag_badge(claim)
    return None


def _tag_badge(claim: TagBadgeClaim) -> Badge | None:
    # `tags` is a space-separated list: narrow down in SQL, then match whole tags.
    rows = Check.objects.filter(team_id=claim.team_id, tags__contains=claim.tag).values_list(
        "tags", "status"
    )
    statuses = [status for tags, status in rows if claim.tag in tags.split()]
    if not statuses and not Team.objects.filter(pk=claim.team_id).exists():
        return None
    return tag_badge(claim.tag, statuses)
