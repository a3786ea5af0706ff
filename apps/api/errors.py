"""One JSON shape for every API error:

    {"error": "Invalid input.", "code": "invalid", "fields": {"period": ["..."]}}

`error` is a sentence for people (and the key Healthchecks clients read), `code` is stable for
programs, `fields` appears on validation errors only and maps each input field (or
`non_field_errors`) to its messages.
"""

from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.views import exception_handler


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the object's current state."
    default_code = "conflict"


def _messages(detail, prefix: str = "") -> list[str]:
    """Every message under `detail` as a flat list; a nested error (an item of a list field,
    a key of an object) is prefixed with where it is, e.g. "[2]: A tag has no spaces"."""
    if isinstance(detail, dict):
        flat = []
        for key, value in detail.items():
            where = f"[{key}]" if str(key).isdigit() else f".{key}"
            flat.extend(_messages(value, prefix + where))
        return flat
    if isinstance(detail, list):
        return [message for item in detail for message in _messages(item, prefix)]
    return [f"{prefix.lstrip('.')}: {detail}" if prefix else str(detail)]


def _field_messages(detail: dict) -> dict[str, list[str]]:
    return {str(name): _messages(value) for name, value in detail.items()}


def error_body(message: str, code: str, fields: dict | None = None) -> dict:
    body = {"error": message, "code": code}
    if fields is not None:
        body["fields"] = fields
    return body


def api_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 (and its logging) handles it
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if not isinstance(detail, dict):
            detail = {"non_field_errors": detail}
        response.data = error_body("Invalid input.", "invalid", _field_messages(detail))
    else:
        if isinstance(exc, Http404):
            # get_object_or_404 raises Django's Http404, which DRF answers without a code.
            exc = exceptions.NotFound()
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(detail), str(code))
    return response


@csrf_exempt  # else a POST to an unknown URL gets CSRF's HTML 403 instead of this 404
def json_not_found(request, *args, **kwargs):
    """Unknown URLs under /api/ answer in the API's shape, not with an HTML page."""
    return JsonResponse(error_body("No such endpoint.", "not_found"), status=404)
