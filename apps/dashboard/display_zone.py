"""Pages show times in the reader's zone: the one chosen on the account page, else the
browser's own (the cookie static/js/tocsin.js keeps), else UTC."""

from django.utils import timezone

from apps.teams.display_time import BROWSER_ZONE_COOKIE, chosen_zone_name, zone_or_none


def reader_zone(request) -> tuple[str, str]:
    """The zone name this request's pages are written in, and where it came from: "chosen",
    "browser", or "default" (UTC, when nothing usable is known)."""
    for name, source in (
        (chosen_zone_name(getattr(request, "user", None)), "chosen"),
        (request.COOKIES.get(BROWSER_ZONE_COOKIE, ""), "browser"),
    ):
        if zone_or_none(name) is not None:
            return name, source
    return "UTC", "default"


class DisplayZoneMiddleware:
    """Activates the reader's zone for the request, so templates' dates are in it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name, request.display_zone_source = reader_zone(request)
        timezone.activate(zone_or_none(name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
