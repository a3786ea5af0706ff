"""Form fields and cleaners shared by every form that edits a check's settings: the check form,
the team's defaults for auto-provisioned checks, the escalation forms' durations. The same rules
hold on every page and in the API, because the API validates through these forms too."""

import re
from datetime import timedelta

from django import forms

from . import schedule
from .schedule import Schedule, ScheduleError, ScheduleKind

UNIT_CHOICES = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
PRECISE_UNIT_CHOICES = [("seconds", "seconds"), *UNIT_CHOICES]
UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# Above every duration's 365-day limit in any unit, and below timedelta's own limit in days.
MAX_DURATION_AMOUNT = 10**8
MAX_TAG_LENGTH = 50
# People type "db, nightly" as often as "db nightly": both separate tags.
_TAG_SEPARATORS = re.compile(r"[\s,]+")


class DurationInput(forms.MultiValueField):
    """A number and a unit ("90 minutes"), so nobody has to type ISO 8601 durations.

    `precise=True` adds a seconds unit ("90 seconds"), for settings that may be any whole
    number of seconds; `minimum` is the shortest duration the field accepts (1 minute unless
    said otherwise). A form may still check its own upper limits."""

    def __init__(self, label, *, precise=False, minimum=timedelta(minutes=1), **kwargs):
        self.minimum = minimum
        self.min_message = f"{label} must be at least {schedule.spelled_duration(minimum)}."
        choices = PRECISE_UNIT_CHOICES if precise else UNIT_CHOICES
        names = [name for name, _ in choices]
        fields = (
            forms.IntegerField(
                max_value=MAX_DURATION_AMOUNT,
                error_messages={
                    "invalid": "Enter a whole number.",
                    "max_value": f"{label} must be at most 365 days.",
                },
            ),
            forms.ChoiceField(
                choices=choices,
                error_messages={
                    "invalid_choice": f"Choose {', '.join(names[:-1])} or {names[-1]}."
                },
            ),
        )
        super().__init__(fields=fields, label=label, require_all_fields=True, **kwargs)
        self.widget = forms.MultiWidget(
            widgets=[
                forms.NumberInput(
                    attrs={
                        "min": 1,
                        "step": 1,
                        "inputmode": "numeric",
                        "aria-label": f"{label} amount",
                    }
                ),
                forms.Select(choices=choices, attrs={"aria-label": f"{label} unit"}),
            ]
        )
        self.widget.decompress = self.decompress if precise else self.decompress_in_minutes

    @staticmethod
    def decompress(value):
        """The largest unit that shows the duration exactly (5400 s is "90 minutes")."""
        if not value:
            return [None, "hours"]
        seconds = int(value.total_seconds())
        for unit in ("days", "hours", "minutes"):
            if seconds % UNIT_SECONDS[unit] == 0:
                return [seconds // UNIT_SECONDS[unit], unit]
        return [seconds, "seconds"]

    @staticmethod
    def decompress_in_minutes(value):
        amount, unit = DurationInput.decompress(value)
        if unit == "seconds":  # saved by other means; shown rounded down, as before
            return [amount // 60, "minutes"]
        return [amount, unit]

    def compress(self, data_list):
        if not data_list:
            return None
        amount, unit = data_list
        if amount is None:  # an optional duration left empty (the unit select always has a value)
            return None
        duration = timedelta(seconds=amount * UNIT_SECONDS[unit])
        if duration < self.minimum:
            raise forms.ValidationError(self.min_message, code="min_value")
        return duration


def cleaned_tags(value: str) -> str:
    """Tags separated by spaces or commas, as one space-separated string without repeats;
    ValidationError when one is too long. Shared by the check form and the team's defaults."""
    tags = [tag for tag in _TAG_SEPARATORS.split(value) if tag]
    too_long = [tag for tag in tags if len(tag) > MAX_TAG_LENGTH]
    if too_long:
        raise forms.ValidationError(
            f"Each tag must be at most {MAX_TAG_LENGTH} characters; "
            f"“{too_long[0][:20]}…” has {len(too_long[0])}."
        )
    return " ".join(dict.fromkeys(tags))


def cleaned_interval(value, label: str, minimum=schedule.MIN_INTERVAL):
    """`value` when it is within the limits of a check's durations, else ValidationError."""
    message = schedule.interval_error(value, label, minimum)
    if message:
        raise forms.ValidationError(message)
    return value


def cleaned_timezone(value: str | None) -> str:
    """A usable IANA zone name ("UTC" when empty), even for period schedules, which do not use
    it: switching the kind later must not meet a zone that does not exist."""
    name = (value or "").strip() or "UTC"
    try:
        return schedule.valid_timezone_name(name)
    except ScheduleError as exc:
        raise forms.ValidationError(str(exc)) from None


def schedule_from(kind, period, expression, timezone) -> Schedule:
    """A Schedule from the form's values; raises ScheduleError for an unknown kind."""
    try:
        kind = ScheduleKind(kind or ScheduleKind.PERIOD)
    except ValueError:
        raise ScheduleError("Choose period, cron or OnCalendar.") from None
    return Schedule(
        kind=kind,
        period=period or timedelta(days=1),
        expression=(expression or "").strip(),
        timezone=(timezone or "UTC").strip(),
    )


def schedule_error_field(message: str) -> str:
    """The form field a schedule error belongs next to."""
    if "timezone" in message.lower():
        return "timezone"
    return "schedule_expression"
