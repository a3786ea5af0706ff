"""Absolute badge URLs, for the check page and the API (no login needed to fetch them)."""

from django.conf import settings
from django.urls import reverse

from .tokens import make_check_badge_token, make_tag_badge_token


def badge_url(check, fmt: str = "svg") -> str:
    """The check's badge: fmt "svg" (an image) or "json" (a shields.io endpoint badge)."""
    token = make_check_badge_token(check.pk)
    return settings.SITE_URL + reverse(f"badges:{fmt}", args=[token])


def badge_url_for_tag(team, tag: str, fmt: str = "svg") -> str:
    """The badge summarising the team's checks that carry `tag`."""
    token = make_tag_badge_token(team.pk, tag)
    return settings.SITE_URL + reverse(f"badges:{fmt}", args=[token])
