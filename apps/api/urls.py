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
from .notification_settings import NotificationSettingsView
from .policies import EscalationPolicyViewSet
from .rotations import RotationViewSet
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
router.register("rotations", RotationViewSet, basename="rotation")

# Healthchecks' Management API, mounted once per version (v1, v2, v3; the views differ by
# `api_version`). Healthchecks writes /checks/<uuid> without a trailing slash and /pings/ with
# one; both spellings are accepted everywhere.
HC_CODE = rf"(?P<code>{UUID_PATTERN})"
# A read-only key sees unique_key (40 hex digits) instead of the UUID; Healthchecks accepts it
# for a single check and its flips.
HC_CODE_OR_KEY = rf"(?P<code>{UUID_PATTERN}|[0-9a-fA-F]{{40}})"


def healthchecks_patterns(version: int) -> list:
    def view(cls):
        return cls.as_view(api_version=version)

    name = f"v{version}-{{}}".format
    return [
        re_path(r"^checks/?$", view(v3.V3CheckList), name=name("checks")),
        re_path(rf"^checks/{HC_CODE_OR_KEY}/?$", view(v3.V3CheckDetail), name=name("check")),
        re_path(rf"^checks/{HC_CODE}/pause/?$", view(v3.V3Pause), name=name("pause")),
        re_path(rf"^checks/{HC_CODE}/resume/?$", view(v3.V3Resume), name=name("resume")),
        re_path(rf"^checks/{HC_CODE}/pings/?$", view(v3.V3PingList), name=name("pings")),
        re_path(
            rf"^checks/{HC_CODE}/pings/(?P<n>[0-9]{{1,9}})/body/?$",
            view(v3.V3PingBody),
            name=name("ping-body"),
        ),
        re_path(rf"^checks/{HC_CODE_OR_KEY}/flips/?$", view(v3.V3FlipList), name=name("flips")),
        re_path(r"^channels/?$", view(v3.V3ChannelList), name=name("channels")),
        re_path(r"^badges/?$", view(v3.V3BadgeList), name=name("badges")),
        re_path(r"^status/?$", v3.v3_status, name=name("status")),
    ]


# Tocsin's own API lives under a path of its own, so that Healthchecks' /api/v1/ and /api/v2/
# are free for Healthchecks clients. Nothing was released under the old /api/v1/ paths, so
# they are not kept.
TOCSIN = "tocsin/v1/"
urlpatterns = [
    path(TOCSIN, include(router.urls)),
    path(f"{TOCSIN}metrics/", MetricsView.as_view(), name="metrics"),
    path(
        f"{TOCSIN}notification-settings/",
        NotificationSettingsView.as_view(),
        name="notification-settings",
    ),
    path(f"{TOCSIN}schema/", SpectacularAPIView.as_view(), name="schema"),
    path(f"{TOCSIN}docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path(f"{TOCSIN}redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    *(path(f"v{n}/", include(healthchecks_patterns(n))) for n in v3.API_VERSIONS),
    re_path(r"^[\s\S]*$", json_not_found),  # any character: an encoded newline too
]
