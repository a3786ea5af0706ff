"""What every version of the Healthchecks API shares: CORS as Healthchecks answers it, the
version a view is mounted for, and errors whose `error` is Healthchecks' own sentence."""

from rest_framework import exceptions, status
from rest_framework.response import Response

from .base import TeamApiMixin


class HealthchecksError(exceptions.APIException):
    """A 400 whose `error` is the message Healthchecks gives (clients show it)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"


class HealthchecksApiMixin(TeamApiMixin):
    """Any version of Healthchecks' API: `api_version` is set per mount (urls.py). Answers
    carry Healthchecks' CORS headers, and a CORS preflight (OPTIONS, which a browser sends
    without the key) is answered 204 before authentication."""

    api_version = 3
    pagination_class = None
    cors_methods = "GET, POST, DELETE, OPTIONS"

    def initial(self, request, *args, **kwargs):
        if request.method == "OPTIONS":
            return  # no key, no throttling: options() answers with headers only
        super().initial(request, *args, **kwargs)

    def options(self, request, *args, **kwargs):
        return Response(status=status.HTTP_204_NO_CONTENT)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Allow-Headers"] = "X-Api-Key"
        response["Access-Control-Allow-Methods"] = self.cors_methods
        response["Access-Control-Max-Age"] = "600"
        return response
