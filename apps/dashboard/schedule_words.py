"""A schedule read back in plain words for the check form ("At 03:00, Monday through Friday"),
beside the preview of its next times. Cron is read by cron-descriptor; OnCalendar by our own
reader of its common forms (oncalendar_words.py), since PyPI has none."""

from cron_descriptor import (
    FormatError,
    MissingFieldError,
    Options,
    WrongArgumentError,
    get_description,
)

from apps.checks.schedule import CRON_ALIASES, ScheduleKind

from .oncalendar_words import describe_oncalendar

_OPTIONS = Options()
_OPTIONS.use_24hour_time_format = True
_OPTIONS.verbose = False


def describe_schedule(kind: str, expression: str, timezone: str) -> str:
    """Plain words for a valid cron or OnCalendar expression, with its zone ("At 03:00,
    Monday through Friday (Europe/Riga time)"); "" for a period or what the readers cannot
    parse (the schedule's own validation has the last word and says what is wrong)."""
    if kind == ScheduleKind.ONCALENDAR:
        words = describe_oncalendar(expression)
        return f"{words} ({timezone} time)" if words else ""
    if kind != ScheduleKind.CRON:
        return ""
    fields = " ".join(expression.split())
    fields = CRON_ALIASES.get(fields.lower(), fields)
    try:
        words = get_description(fields, _OPTIONS)
    except (FormatError, MissingFieldError, WrongArgumentError, ValueError, KeyError):
        # Words are a comfort: the schedule's own validation says what is wrong.
        return ""
    return f"{words} ({timezone} time)"
