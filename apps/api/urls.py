from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from . import healthchecks_v3 as v3
from .channels import ChannelViewSet
from .checks import UUID_PATTERN, CheckBySlugViewSet, CheckViewSet
from .errors import json_not_found
from .incidents import IncidentViewSet
from .members import MemberViewSet
from .metrics_view import MetricsView
from .policies import EscalationPolicyViewSet
from .silences import MaintenanceWindowViewSet, SilenceViewSet

app_name = "api"

router = SimpleRouter()
router.register("checks/by-slug", CheckBySlugViewSet, basename="check-by-slug")
router.register("checks", CheckViewSet, basename="check")
router.register("incidents", IncidentViewSet, basename="incident")
router.register("silences", SilenceViewSet, basename="silence")
router.register("members", MemberViewSet, basename="member")
router.register("channels", ChannelViewSet, basename="channel")
router.register("escalation-policies", EscalationPolicyViewSet, basename="escalation-policy")
router.register("maintenance-windows", MaintenanceWindowViewSet, basename="maintenance-window")

# Healthchecks writes /api/v3/checks/<uuid> without a trailing slash and /pings/ with one;
# both spellings are accepted everywhere.
V3_CODE = rf"(?P<code>{UUID_PATTERN})"
v3_patterns = [
    re_path(r"^checks/?$", v3.V3CheckList.as_view(), name="v3-checks"),
    # A read-only key sees unique_key (40 hex digits) instead of the UUID; Healthchecks
    # accepts it for a single check and its flips.
    re_path(
        rf"^checks/(?P<code>{UUID_PATTERN}|[0-9a-fA-F]{{40}})/?$",
        v3.V3CheckDetail.as_view(),
        name="v3-check",
    ),
    re_path(rf"^checks/{V3_CODE}/pause/?$", v3.V3Pause.as_view(), name="v3-pause"),
    re_path(rf"^checks/{V3_CODE}/resume/?$", v3.V3Resume.as_view(), name="v3-resume"),
    re_path(rf"^checks/{V3_CODE}/pings/?$", v3.V3PingList.as_view(), name="v3-pings"),
    re_path(
        rf"^checks/{V3_CODE}/pings/(?P<n>[0-9]{{1,9}})/body/?$",
        v3.V3PingBody.as_view(),
        name="v3-ping-body",
    ),
    re_path(
        rf"^checks/(?P<code>{UUID_PATTERN}|[0-9a-fA-F]{{40}})/flips/?$",
        v3.V3FlipList.as_view(),
        name="v3-flips",
    ),
    re_path(r"^channels/?$", v3.V3ChannelList.as_view(), name="v3-channels"),
    re_path(r"^badges/?$", v3.V3BadgeList.as_view(), name="v3-badges"),
    re_path(r"^status/?$", v3.v3_status, name="v3-status"),
]

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/metrics/", MetricsView.as_view(), name="metrics"),
    path("v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("v1/redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("v3/", include(v3_patterns)),
    re_path(r"^[\s\S]*$", json_not_found),  # any character: an encoded newline too
]
