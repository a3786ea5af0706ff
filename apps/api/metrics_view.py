from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.views import APIView

from apps.clock import database_now

from .base import TeamApiMixin
from .metrics import collect_team_metrics, format_metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PlainTextRenderer(BaseRenderer):
    """Lets Prometheus ask for text/plain only; errors are still the API's JSON, as text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode()
        return JSONRenderer().render(data)


class MetricsView(TeamApiMixin, APIView):
    renderer_classes = [JSONRenderer, PlainTextRenderer]

    @extend_schema(
        summary="The team's metrics in the Prometheus text format",
        description=(
            "Check status, last ping age, latest run duration and open runs per check; open "
            "incidents by state and severity; notifications by delivery status; outbound "
            "messages by status and kind, and those being retried after a failure; sweeper lag. "
            "Scrape it with a read-only key as a bearer token."
        ),
        responses={(200, "text/plain"): OpenApiTypes.STR},
    )
    def get(self, request):
        families = collect_team_metrics(team=self.team, now=database_now())
        return HttpResponse(format_metrics(families), content_type=CONTENT_TYPE)
