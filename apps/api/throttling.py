import logging

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .authentication import TeamKey

logger = logging.getLogger(__name__)


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per key (per client address before authentication succeeds), counted in the
    Django cache (Redis when REDIS_URL is set, so every web node shares the count)."""

    scope = "api_key"

    def get_rate(self):
        # Read per request (not at import, as DRF does), so that tests and settings overrides
        # take effect.
        return settings.API_THROTTLE_RATE

    def allow_request(self, request, view):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return self._allow(request, view)

    def get_cache_key(self, request, view):
        if isinstance(request.user, TeamKey):
            ident = f"key-{request.user.api_key.id}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def _allow(self, request, view):
        # The cache is a convenience, not a dependency: when Redis is down the API keeps
        # answering (unthrottled) rather than failing every request.
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("API throttle cache unavailable; request let through", exc_info=True)
            return True
