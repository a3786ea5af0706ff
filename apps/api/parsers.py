from io import BytesIO

from django.conf import settings
from rest_framework.parsers import JSONParser

from .errors import PayloadTooLarge


class LimitedJSONParser(JSONParser):
    """JSONParser that refuses bodies over API_MAX_BODY_BYTES. DRF reads the request stream
    directly, which skips Django's DATA_UPLOAD_MAX_MEMORY_SIZE, so the limit is enforced here
    before anything is buffered or parsed."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise PayloadTooLarge(f"The request body must be at most {limit} bytes.")
        if stream is None:
            return super().parse(stream, media_type, parser_context)
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body must be at most {limit} bytes.")
        return super().parse(BytesIO(body), media_type, parser_context)


class AnyContentTypeJSONParser(LimitedJSONParser):
    """Healthchecks reads its API bodies as JSON whatever the Content-Type (its documented
    examples use `curl --data`, which sends application/x-www-form-urlencoded), so /api/v3/
    does too."""

    media_type = "*/*"
