"""Absolute badge URLs, for the check page and the API (no login needed to fetch them)."""

from django.conf import settings
from django.urls import reverse

from .tokens import make_check_badge_token, make_tag_badge_token


def badge_url(check, fmt: str = "svg") -> str:
    """The check's badge: fmt "svg" (an image), "json" (a shields.io endpoint badge) or
    "counts" (Healthchecks' badge JSON: status and counts)."""
    token = make_check_badge_token(check.badge_key)
    return settings.SITE_URL + reverse(f"badges:{fmt}", args=[token])


def badge_url_for_tag(team, tag: str | None, fmt: str = "svg", *, states: int = 3) -> str:
    """The badge summarising the team's checks that carry `tag` (None: all of them); with
    `states=2`, late counts as up."""
    token = make_tag_badge_token(team.pk, tag, states=states)
    return settings.SITE_URL + reverse(f"badges:{fmt}", args=[token])
