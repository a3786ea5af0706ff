"""The badges page: every badge URL of the current team, to paste into a README or a status
page. Badges are fetched without a login (the signed URL is the credential), so the page is
only for members of the team, like the check page that shows a check's own badge."""

from dataclasses import dataclass

from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.badges.links import badge_url, badge_url_for_tag
from apps.checks.models import Check
from apps.teams.current import current_membership, dashboard_login_required

# (format, label): the formats apps/badges serves.
BADGE_FORMATS = [
    ("svg", "SVG image"),
    ("json", "shields.io endpoint JSON"),
    ("counts", "Status JSON (Healthchecks')"),
]


@dataclass(frozen=True)
class BadgeRow:
    """One badge subject: its anchor id, what it covers, and its URL in each format."""

    key: str
    label: str
    kind: str  # "team", "tag" or "check"
    urls: list[tuple[str, str, str]]  # (format, format label, URL)

    @property
    def svg_url(self) -> str:
        return self.urls[0][2]


def _urls(make) -> list[tuple[str, str, str]]:
    return [(fmt, label, make(fmt)) for fmt, label in BADGE_FORMATS]


def team_badges(team) -> list[BadgeRow]:
    """The team's badges: all checks first, then each tag, then each check (by name). A check
    badge carries only its name and status, never its ping URL."""
    checks = list(
        Check.objects.filter(team=team)
        .order_by("name", "id")
        .only("id", "name", "tags", "badge_key")
    )
    tags = sorted({tag for check in checks for tag in check.tags.split()})
    rows = [
        BadgeRow(
            "all",
            f"Every check of {team.name}",
            "team",
            _urls(lambda f: badge_url_for_tag(team, None, f)),
        )
    ]
    rows += [
        BadgeRow(
            f"tag-{i}", f"#{tag}", "tag", _urls(lambda f, tag=tag: badge_url_for_tag(team, tag, f))
        )
        for i, tag in enumerate(tags)
    ]
    rows += [
        BadgeRow(
            f"check-{check.badge_key.hex}",
            check.name or "(no name)",
            "check",
            _urls(lambda f, check=check: badge_url(check, f)),
        )
        for check in checks
    ]
    return rows


@dashboard_login_required
@require_GET
def badges(request):
    membership = current_membership(request)
    context = {
        "team": membership.team,
        "rows": team_badges(membership.team),
        "formats": BADGE_FORMATS,
    }
    return render(request, "dashboard/badges.html", context)
