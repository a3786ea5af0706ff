from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from apps.teams.addresses import client_address

from .ping_endpoint import handle_ping, read_limited


def _content_length(meta) -> int | None:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_exempt
@never_cache
def ping(request, rest: str = ""):
    """The Django route of the ping protocol. In production config/wsgi.py answers /ping/ before
    Django's middleware stack; this view serves the same `handle_ping` for runserver-less setups
    and for the test client."""
    body, truncated = b"", False
    if request.method == "POST":
        body, truncated = read_limited(
            request, _content_length(request.META), settings.PING_BODY_LIMIT
        )
    result = handle_ping(
        method=request.method,
        path=request.path_info,
        query_string=request.META.get("QUERY_STRING", ""),
        body=body,
        body_truncated=truncated,
        remote_addr=client_address(request.META),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        sent_at_header=request.META.get("HTTP_X_TOCSIN_SENT_AT", ""),
    )
    response = HttpResponse(result.text, status=result.status, content_type="text/plain")
    for name, value in result.headers(settings.PING_BODY_LIMIT):
        response[name] = value
    return response
