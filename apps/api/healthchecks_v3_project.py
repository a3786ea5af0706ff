"""The project-wide endpoints of the Healthchecks Management API v3 (under /api/v3/): the
team's badges, and the service status that uptime monitors poll.

Badges: Healthchecks lists one entry per tag plus "*" (every check of the project), each with
svg/json/shields URLs in a two-state (late counts as up) and a three-state ("3") variant.
Tocsin answers with its own signed badge URLs (apps/badges): "svg" is the SVG image, "json"
Healthchecks' {"status", "total", "grace", "down"} document and "shields" the shields.io
endpoint JSON. The labels and words are Tocsin's (a tag's badge says "2 down", the "*" badge
is labelled with the team's name).
"""

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.badges.links import badge_url_for_tag
from apps.checks.models import Check
from apps.clock import database_ok

from .base import TeamApiMixin

ALL_CHECKS = "*"
# Healthchecks' key -> (Tocsin's badge format, states).
BADGE_VARIANTS = {
    "svg": ("svg", 2),
    "svg3": ("svg", 3),
    "json": ("counts", 2),
    "json3": ("counts", 3),
    "shields": ("json", 2),
    "shields3": ("json", 3),
}


class V3BadgeUrlsSerializer(serializers.Serializer):
    svg = serializers.URLField()
    svg3 = serializers.URLField()
    json = serializers.URLField()
    json3 = serializers.URLField()
    shields = serializers.URLField()
    shields3 = serializers.URLField()


class V3BadgeListSerializer(serializers.Serializer):
    badges = serializers.DictField(
        child=V3BadgeUrlsSerializer(), help_text='By tag, plus "*" for every check of the team.'
    )


def team_tags(team) -> set[str]:
    tags: set[str] = set()
    for text in Check.objects.filter(team=team).values_list("tags", flat=True):
        tags.update(text.split())
    return tags


def badge_urls(team, tag: str | None) -> dict:
    return {
        key: badge_url_for_tag(team, tag, fmt, states=states)
        for key, (fmt, states) in BADGE_VARIANTS.items()
    }


class V3BadgeList(TeamApiMixin, APIView):
    pagination_class = None

    @extend_schema(
        summary="Healthchecks v3: the team's badge URLs, by tag",
        responses={200: V3BadgeListSerializer},
        operation_id="v3_badges_list",
    )
    def get(self, request):
        badges = {tag: badge_urls(self.team, tag) for tag in sorted(team_tags(self.team))}
        # The pseudo-tag wins over a tag literally named "*" (as in Healthchecks).
        badges[ALL_CHECKS] = badge_urls(self.team, None)
        return Response({"badges": badges})


@never_cache
@require_safe
def v3_status(request):
    """Healthchecks' service status: runs a test query; 200 "OK", or 500 when the database
    does not answer. No key needed, as in Healthchecks, and nothing about any team is shown."""
    is_ok, _detail = database_ok()
    if not is_ok:
        # The reason stays in the logs (database_ok's caller on /healthz shows it to
        # operators); an anonymous endpoint does not repeat database error text.
        return HttpResponse("database unavailable", status=500, content_type="text/plain")
    return HttpResponse("OK", content_type="text/plain")
