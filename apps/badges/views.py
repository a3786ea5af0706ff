import hashlib

from django.http import Http404, HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.views.decorators.http import require_safe

from .render import render_counts_json, render_shields_json, render_svg
from .services import subject_for_token

# Short enough that a README shows a failure within a minute or two; long enough that a
# popular README does not turn every view into a query.
MAX_AGE = 60
CONTENT_TYPES = {"svg": "image/svg+xml", "json": "application/json", "counts": "application/json"}


@require_safe
def badge(request, token: str, fmt: str):
    """A check's, a tag's or a team's status badge: an SVG image, a shields.io endpoint badge
    (json) or Healthchecks' badge JSON (counts). No login: the signed token is the credential.
    Answers 304 to a matching If-None-Match."""
    subject = subject_for_token(token)
    if subject is None:
        raise Http404("no such badge")
    if fmt == "svg":
        content = render_svg(subject.badge())
    elif fmt == "json":
        content = render_shields_json(subject.badge(), cache_seconds=MAX_AGE)
    else:
        content = render_counts_json(subject.statuses, states=subject.states)
    etag = '"' + hashlib.sha256(content.encode()).hexdigest()[:32] + '"'
    response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
    response["ETag"] = etag
    patch_cache_control(response, public=True, max_age=MAX_AGE)
    # An SVG opened directly is a document: it may style itself, never run or load anything.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["Access-Control-Allow-Origin"] = "*"
    return get_conditional_response(request, etag=etag, response=response)
