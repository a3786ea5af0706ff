"""The crontab line of the check page's snippet, built from the check's own schedule."""

from datetime import timedelta

from apps.checks.schedule import ScheduleKind

# A period check runs at a fixed time of day we cannot know: these are examples at 03:00.
_DAY = timedelta(days=1)


def crontab_schedule(kind: str, period: timedelta, expression: str) -> str:
    """The five crontab fields that run a job as the schedule expects it, or "" when no
    crontab line says the same (an OnCalendar expression, a period cron cannot express such
    as 7 minutes or 36 hours). A cron check's own expression is used as it is written."""
    if kind == ScheduleKind.CRON:
        return " ".join(expression.split())
    if kind != ScheduleKind.PERIOD or period <= timedelta(0):
        return ""
    seconds = int(period.total_seconds())
    if seconds != period.total_seconds() or seconds % 60:
        return ""
    minutes = seconds // 60
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return f"*/{minutes} * * * *" if 60 % minutes == 0 else ""
    if minutes % 60:
        return ""
    hours = minutes // 60
    if hours == 1:
        return "0 * * * *"
    if hours < 24:
        return f"0 */{hours} * * *" if 24 % hours == 0 else ""
    if period == _DAY:
        return "0 3 * * *"
    if period == 7 * _DAY:
        return "0 3 * * 1"
    return ""
