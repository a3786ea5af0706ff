"""API key authentication for DRF: `Authorization: Bearer <key>` or `X-Api-Key: <key>`.

The authenticated "user" is a TeamKey, not a Django user: a key acts for its team, and every
API query is scoped to `request.user.team`.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .keys import find_api_key
from .models import ApiKey

# last_used_at is for people auditing their keys; a minute's precision saves a write per call.
_LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class TeamKey:
    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False

    @property
    def team(self):
        return self.api_key.team

    @property
    def is_read_only(self) -> bool:
        return self.api_key.is_read_only

    def get_username(self) -> str:
        # Shown on incident timelines ("acknowledged by ...").
        return f"API key {self.api_key.name} ({self.api_key.prefix})"

    def __str__(self) -> str:
        return self.get_username()


def presented_key(request) -> str | None:
    """The key in the request's headers, or None when it carries none."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = request.META.get("HTTP_X_API_KEY", "").strip()
    return value or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        key = presented_key(request)
        if key is None:
            return None  # DRF answers 401 with WWW-Authenticate (see authenticate_header)
        api_key = find_api_key(key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        self._touch(api_key)
        return TeamKey(api_key), api_key

    @staticmethod
    def _touch(api_key: ApiKey) -> None:
        now = timezone.now()
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - _LAST_USED_PRECISION)
        ApiKey.objects.filter(stale, id=api_key.id).update(last_used_at=now)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class HealthchecksBodyKeyAuthentication(ApiKeyAuthentication):
    """The Healthchecks v3 way as well: a POST may carry the key as `api_key` in its JSON body
    instead of a header (curl scripts written for Healthchecks do). Headers still win."""

    def authenticate(self, request):
        if presented_key(request) is None and request.method == "POST":
            try:
                body = request.data  # parsed by the view's (size-limited) JSON parsers
            except exceptions.APIException:
                body = None  # unreadable: no key in it, so the answer is 401, not 400
            key = body.get("api_key") if isinstance(body, dict) else None
            if isinstance(key, str) and key.strip():
                api_key = find_api_key(key.strip())
                if api_key is None:
                    raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
                self._touch(api_key)
                return TeamKey(api_key), api_key
        return super().authenticate(request)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = ["BearerKey", "ApiKeyHeader"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "description": "A team API key."},
            {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        ]
