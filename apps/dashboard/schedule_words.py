"""A schedule read back in plain words for the check form ("At 03:00, Monday through Friday"),
beside the preview of its next times. Cron is read by cron-descriptor; an OnCalendar expression
has no such reader, so the form shows its next times only."""

from cron_descriptor import (
    FormatError,
    MissingFieldError,
    Options,
    WrongArgumentError,
    get_description,
)

from apps.checks.schedule import CRON_ALIASES, ScheduleKind

_OPTIONS = Options()
_OPTIONS.use_24hour_time_format = True
_OPTIONS.verbose = False


def describe_schedule(kind: str, expression: str, timezone: str) -> str:
    """Plain words for a valid cron expression, with its zone ("At 03:00, Monday through
    Friday (Europe/Riga time)"); "" for other kinds or what the reader cannot parse (the
    schedule's own validation has the last word and says what is wrong)."""
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
