"""What every API view shares: key authentication, read-only enforcement, per-key throttling,
a size-limited JSON parser, pagination and the API's error shape."""

from rest_framework.renderers import JSONRenderer

from .authentication import ApiKeyAuthentication
from .errors import api_exception_handler
from .pagination import ApiPagination
from .parsers import LimitedJSONParser
from .permissions import HasTeamKey
from .throttling import ApiKeyRateThrottle

# Ids in URLs: digits only, and few enough that they fit a bigint (no 500 from an overflow).
ID_PATTERN = "[0-9]{1,18}"


class TeamApiMixin:
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasTeamKey]
    throttle_classes = [ApiKeyRateThrottle]
    parser_classes = [LimitedJSONParser]
    renderer_classes = [JSONRenderer]
    pagination_class = ApiPagination

    @property
    def team(self):
        return self.request.user.team

    def get_exception_handler(self):
        return api_exception_handler
