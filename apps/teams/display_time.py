"""Which zone a person reads times in. Pages use the person's chosen zone, else the browser's
(a cookie that static/js/tocsin.js keeps up to date), else UTC; emails use the chosen zone or
UTC (a worker knows no browser)."""

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .models import UserSettings

# The cookie the browser's script sets to its own zone (Intl.DateTimeFormat).
BROWSER_ZONE_COOKIE = "tocsin_tz"
MAX_ZONE_NAME = 64


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name this system knows, sorted, for pickers and validation."""
    return tuple(sorted(available_timezones()))


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The zone called `name`, or None for a blank, over-long or unknown name (never raises:
    the name may come from a cookie)."""
    if not name or len(name) > MAX_ZONE_NAME or name not in zone_names():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def chosen_zone_name(user) -> str:
    """The user's own display zone, or "" when they have not chosen one."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    row = UserSettings.objects.filter(user_id=user.pk).values_list("display_timezone").first()
    return row[0] if row else ""


def email_zone_name(user_id: int | None) -> str:
    """The zone an email to this user is written in: their chosen zone, else UTC."""
    if user_id is None:
        return "UTC"
    row = UserSettings.objects.filter(user_id=user_id).values_list("display_timezone").first()
    return row[0] if row and zone_or_none(row[0]) else "UTC"
