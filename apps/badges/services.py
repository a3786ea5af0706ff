"""From a badge token to what the badge shows, reading the current statuses."""

from dataclasses import dataclass

from apps.checks.models import Check
from apps.teams.models import Team

from .render import Badge, check_badge, tag_badge, two_state
from .tokens import CheckBadgeClaim, TagBadgeClaim, read_badge_token


@dataclass(frozen=True)
class BadgeSubject:
    """What a token names, now: a label and the statuses of its checks."""

    label: str
    statuses: list[str]
    is_single_check: bool = False
    states: int = 3

    def badge(self) -> Badge:
        if self.is_single_check:
            return check_badge(self.label, self.statuses[0])
        statuses = two_state(self.statuses) if self.states == 2 else self.statuses
        return tag_badge(self.label, statuses)


def subject_for_token(token: str) -> BadgeSubject | None:
    """The subject of `token`, or None when the token is invalid or its check or team is
    gone. One query for a check; one for a tag (two when it has no checks, or for a team)."""
    claim = read_badge_token(token)
    if isinstance(claim, CheckBadgeClaim):
        found = (
            Check.objects.filter(badge_key=claim.badge_key).values_list("name", "status").first()
        )
        return BadgeSubject(found[0], [found[1]], is_single_check=True) if found else None
    if isinstance(claim, TagBadgeClaim):
        return _team_subject(claim)
    return None


def badge_for_token(token: str) -> Badge | None:
    subject = subject_for_token(token)
    return None if subject is None else subject.badge()


def _team_subject(claim: TagBadgeClaim) -> BadgeSubject | None:
    if claim.tag is None:
        # Every check of the team, labelled with the team's name (Healthchecks' "*" badge).
        team_name = Team.objects.filter(pk=claim.team_id).values_list("name", flat=True).first()
        if team_name is None:
            return None
        statuses = list(
            Check.objects.filter(team_id=claim.team_id).values_list("status", flat=True)
        )
        return BadgeSubject(team_name, statuses, states=claim.states)
    # `tags` is a space-separated list: narrow down in SQL, then match whole tags.
    rows = Check.objects.filter(team_id=claim.team_id, tags__contains=claim.tag).values_list(
        "tags", "status"
    )
    statuses = [status for tags, status in rows if claim.tag in tags.split()]
    if not statuses and not Team.objects.filter(pk=claim.team_id).exists():
        return None
    return BadgeSubject(claim.tag, statuses, states=claim.states)
