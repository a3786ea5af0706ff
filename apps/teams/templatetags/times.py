"""Times as people read them, in the active zone (the reader's, see apps/teams/display_time.py):
one format everywhere, "2 Dec 2026, 09:00 EET", and "just now" / "5 minutes ago" for recent
moments. Values may be datetimes or the ISO 8601 strings kept in JSON (incident details)."""

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

_FORMAT = "%-d %b %Y, %H:%M"
_FORMAT_SECONDS = "%-d %b %Y, %H:%M:%S"
_AGO_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def as_datetime(value) -> datetime | None:
    """An aware datetime from a datetime or an ISO 8601 string; None for anything else."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def zone_label(moment: datetime) -> str:
    """The zone's abbreviation (EET, CEST), or its name where the abbreviation is only an
    offset ("+04" says less than "Asia/Dubai")."""
    abbreviation = moment.strftime("%Z")
    if abbreviation[:1] in "+-" or not abbreviation:
        return str(moment.tzinfo)
    return abbreviation


@register.filter
def when(value, precision: str = "") -> str:
    """ "2 Dec 2026, 09:00 EET" in the active zone; `when:"seconds"` adds the seconds. A
    value that is not a time is shown as it is, a missing one as nothing."""
    moment = as_datetime(value)
    if moment is None:
        return "" if value in (None, "") else str(value)
    local = timezone.localtime(moment)
    text = local.strftime(_FORMAT_SECONDS if precision == "seconds" else _FORMAT)
    return f"{text} {zone_label(local)}"


@register.filter
def when_tag(value, precision: str = ""):
    """`when` inside a <time> element that carries the exact instant for machines."""
    moment = as_datetime(value)
    if moment is None:
        return when(value, precision)
    return format_html('<time datetime="{}">{}</time>', moment.isoformat(), when(moment, precision))


def ago_text(moment: datetime, now: datetime) -> str:
    """ "just now" under a minute, then "1 minute ago", "3 hours ago", "2 days ago"; a moment
    in the future (clock skew) is "just now"."""
    seconds = int((now - moment).total_seconds())
    if seconds < 60:
        return "just now"
    for name, size in _AGO_UNITS:
        amount = seconds // size
        if amount:
            return f"{amount} {name}{'' if amount == 1 else 's'} ago"
    return "just now"


@register.filter
def ago(value, now=None) -> str:
    """How long ago `value` was, from `now` (default: the web server's clock; display only)."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    return ago_text(moment, now if isinstance(now, datetime) else timezone.now())


@register.simple_tag
def current_zone_name() -> str:
    """The zone the page's times are in, to name it once on the page."""
    return timezone.get_current_timezone_name()
