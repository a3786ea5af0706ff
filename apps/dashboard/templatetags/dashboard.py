"""Template helpers of the dashboard: the team switcher and human durations."""

import math
from datetime import UTC, datetime, timedelta

from django import template
from django.core.exceptions import PermissionDenied

from apps.checks import downtime
from apps.teams.current import current_membership, memberships_of
from apps.teams.models import Membership

from .. import labels
from ..charts import precise_duration

register = template.Library()

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


@register.filter
def duration(value: timedelta | None) -> str:
    """1 day 2 hours, 90 minutes -> "1 hour 30 minutes"; two units at most."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0 seconds"
    parts = []
    for name, size in _UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {name}{'' if amount == 1 else 's'}")
    return " ".join(parts[:2])


@register.filter
def exact_duration(value: timedelta | None) -> str:
    """To the second ("3 h 0 min 12 s"), as the status reports write downtime."""
    return "" if value is None else downtime.exact_duration(value)


@register.filter
def run_duration(value: timedelta | None) -> str:
    """A run's duration with sub-second precision (charts.precise_duration)."""
    return precise_duration(value)


@register.filter
def sub_percent(height: int, percent: float) -> float:
    """The SVG y of a line `percent` up a plot `height` tall (y grows downwards)."""
    return round(height - height * percent / 100, 2)


@register.filter
def iso_utc(value: str | None) -> str:
    """An ISO 8601 timestamp kept in JSON (incident details) shown like the others, in UTC."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@register.inclusion_tag("dashboard/_team_switcher.html", takes_context=True)
def team_switcher(context):
    """A form to change the session's team, only for users in more than one team."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"memberships": []}
    memberships = list(memberships_of(user))
    if len(memberships) < 2:
        return {"memberships": []}
    return {
        "memberships": memberships,
        "current_team_id": current_membership(request).team_id,
        "csrf_token": context.get("csrf_token"),
    }


@register.simple_tag(takes_context=True)
def current_team_membership(context):
    """The membership the dashboard shows (for the top bar's links), or None."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    try:
        return current_membership(request)
    except PermissionDenied:
        return None


@register.filter
def percent(ratio: float | None) -> str:
    """0.99996 -> "99.99 %": rounded down, so that anything short of perfect never shows 100."""
    if ratio is None:
        return ""
    hundredths = math.floor(ratio * 10000)
    return f"{hundredths // 100}.{hundredths % 100:02d} %" if hundredths < 10000 else "100 %"


@register.filter
def has_role(membership, minimum: str) -> bool:
    """{% if membership|has_role:"admin" %}: the membership's role is at least `minimum`."""
    return membership is not None and membership.has_role(Membership.Role(minimum))


register.filter("reason_label", labels.reason_label)
register.filter("ping_kind_label", labels.ping_kind_label)
register.filter("schedule_kind_label", labels.schedule_kind_label)


# Which schedule kinds each schedule field belongs to (the check form shows only those); grace
# and the kind itself belong to all.
SCHEDULE_FIELD_KINDS = {
    "period": "period",
    "schedule_expression": "cron oncalendar",
    "timezone": "cron oncalendar",
}


@register.filter
def schedule_field_kinds(name: str) -> str:
    return SCHEDULE_FIELD_KINDS.get(name, "all")


@register.filter
def has_errors_in(form, names) -> bool:
    """{% if form|has_errors_in:advanced_fields %}: any of these fields has an error."""
    return any(name in form.errors for name in names)
