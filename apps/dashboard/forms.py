import re
from datetime import timedelta

from django import forms
from django.core.validators import MaxValueValidator
from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, F, Value, When
from django.db.models.functions import Concat, Lower
from django.urls import reverse_lazy
from django.utils.text import slugify

from apps.checks import schedule
from apps.checks.clock import database_now
from apps.checks.models import Check, parse_exit_statuses
from apps.checks.schedule import Schedule, ScheduleError, ScheduleKind
from apps.escalation.models import EscalationPolicy

# A check may depend on at most this many others (each is looked at when its incident opens).
MAX_DEPENDENCIES = 20

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


# Counts of pings or runs: 1 is the default everywhere, 100 is more than any sane setting.
COUNT_LIMITS = {
    "failure_threshold": (1, 100),
    "recovery_threshold": (1, 100),
    "missed_tolerance": (1, 100),
    "transient_limit": (0, 100),  # 0: every temporary failure counts as a failure
    "flap_threshold": (0, 100),  # 0: flapping detection off
}
OPTIONAL_DURATIONS = {
    "max_runtime": "Maximum run time",
    "progress_timeout": "Progress timeout",
    "severity_raise_after": "Raise severity after",
}
# The form's groups, in order; the template renders one fieldset per group.
FIELDSETS = [
    ("Check", ["name", "slug", "environment", "tags", "description"]),
    ("Schedule", ["schedule_kind", "period", "schedule_expression", "timezone", "grace"]),
    ("Runs", ["max_runtime", "progress_timeout", "missed_tolerance"]),
    (
        "What counts",
        [
            "post_only",
            "success_keywords",
            "failure_keywords",
            "partial_max_failed",
            "partial_max_ratio",
            "transient_exit_statuses",
            "transient_limit",
        ],
    ),
    (
        "Alerting",
        [
            "failure_threshold",
            "recovery_threshold",
            "manual_resume",
            "flap_threshold",
            "flap_window",
        ],
    ),
    ("Severity", ["severity", "severity_raise_after", "severity_raise_to"]),
    ("Escalation", ["escalation_policy", "depends_on"]),
]
# Settings with a model default: left out of a submission (an older client, the API), or left
# empty, they take that default instead of failing as required.
DEFAULTED = [
    "schedule_kind",
    "timezone",
    "missed_tolerance",
    "failure_threshold",
    "recovery_threshold",
    "transient_limit",
    "flap_threshold",
    "flap_window",
    "severity",
    "severity_raise_to",
]
SCHEDULE_FIELDS = ["schedule_kind", "period", "schedule_expression", "timezone"]

# htmx: any change to a schedule field re-renders the preview of the next expected times.
PREVIEW_ATTRS = {
    "hx-get": reverse_lazy("dashboard:schedule-preview"),
    "hx-trigger": "change, keyup changed delay:400ms",
    "hx-include": ", ".join(
        f"[name='{name}']"
        for name in ("schedule_kind", "period_0", "period_1", "schedule_expression", "timezone")
    ),
    "hx-target": "#schedule-preview",
    "hx-swap": "innerHTML",
}


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


class CheckForm(forms.ModelForm):
    # Every duration of a check takes seconds (the API and Healthchecks' API speak seconds);
    # a run's thresholds may be a few seconds, for short jobs.
    period = DurationInput("Period", precise=True, initial=timedelta(days=1))
    grace = DurationInput(
        "Grace", precise=True, minimum=schedule.MIN_THRESHOLD, initial=timedelta(hours=1)
    )
    max_runtime = DurationInput(
        "Maximum run time", precise=True, minimum=schedule.MIN_THRESHOLD, required=False
    )
    progress_timeout = DurationInput(
        "Progress timeout", precise=True, minimum=schedule.MIN_THRESHOLD, required=False
    )
    severity_raise_after = DurationInput(
        "Raise severity after", precise=True, minimum=schedule.MIN_THRESHOLD, required=False
    )
    flap_window = DurationInput("Flap window", precise=True, initial=timedelta(hours=1))

    class Meta:
        model = Check
        fields = [name for _, names in FIELDSETS for name in names]
        labels = {
            "schedule_kind": "Schedule",
            "schedule_expression": "Expression",
            "post_only": "Only POST requests count",
            "manual_resume": "Stay down until resumed by hand",
            "missed_tolerance": "Missed runs tolerated",
            "partial_max_failed": "Partial run: most failed items",
            "partial_max_ratio": "Partial run: largest failed ratio",
            "transient_exit_statuses": "Temporary-failure exit statuses",
            "transient_limit": "Temporary failures tolerated in a row",
            "failure_threshold": "Failures before alerting",
            "recovery_threshold": "Successes before recovering",
            "flap_threshold": "Flapping above this many changes",
            "severity_raise_to": "Raise severity to",
            "depends_on": "Depends on",
        }
        help_texts = {
            "slug": "Used in /ping/<ping key>/<slug> URLs. Leave blank to derive it from the name.",
            "tags": "Separated by spaces or commas; each at most 50 characters.",
            "environment": "For example production or staging; shown in alerts.",
            "schedule_kind": "Every period after the last ping, or a cron / OnCalendar expression.",
            "schedule_expression": "Cron: 5 fields (0 3 * * *). OnCalendar: Mon..Fri 03:00.",
            "timezone": "IANA name such as Europe/Riga; cron and OnCalendar times are local to it.",
            "max_runtime": "A started run that has not finished by then is hung. Empty: no limit.",
            "progress_timeout": "A started run that reports no progress for this long is stalled.",
            "missed_tolerance": "Go down only after this many expected pings in a row are missed.",
            "success_keywords": "One per line: a ping body containing one counts as success.",
            "failure_keywords": "One per line: a ping body containing one counts as failure.",
            "partial_max_failed": "A run reporting more failed items than this fails. Empty: any.",
            "partial_max_ratio": "From 0 to 1: failed items / processed above this fails.",
            "transient_exit_statuses": "Separated by spaces or commas, from 1 to 255.",
            "failure_threshold": "From 1 to 100 failures in a row.",
            "recovery_threshold": "From 1 to 100 successes in a row.",
            "flap_threshold": "Up/down changes within the flap window; 0 turns detection off.",
            "escalation_policy": "Who is notified, and when. Empty: the team's default policy.",
            "depends_on": "While one of these is down, this check's alerts are held back "
            "(“caused by”); if it still fails after they recover, it alerts then.",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "success_keywords": forms.Textarea(attrs={"rows": 2}),
            "failure_keywords": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.fields["slug"].required = False
        for name in DEFAULTED:
            self.fields[name].required = False
        for name, (low, high) in COUNT_LIMITS.items():
            field = self.fields[name]
            field.min_value, field.max_value = low, high
            field.widget.attrs.update(min=low, max=high)
            field.validators = [v for v in field.validators if not hasattr(v, "limit_value")] + [
                self._count_validator(field.label, low, high)
            ]
        ratio = self.fields["partial_max_ratio"]
        ratio.widget.attrs.update(min=0, max=1, step="any")
        failed = self.fields["partial_max_failed"]
        failed.max_value = 10**9
        failed.validators.append(MaxValueValidator(10**9))
        failed.widget.attrs.update(min=0, max=10**9)
        for name in SCHEDULE_FIELDS:
            self.fields[name].widget.attrs.update(PREVIEW_ATTRS)
        self.fields["schedule_kind"].choices = list(schedule.SCHEDULE_KIND_LABELS.items())
        self.fields["timezone"].widget.attrs["list"] = "zone-names"  # check_form.html's datalist
        # Choices come from this team only: another team's policy or check is an invalid
        # choice, never a reference across teams.
        policy = self.fields["escalation_policy"]
        policy.queryset = EscalationPolicy.objects.filter(team=team).order_by("name")
        policy.empty_label = "Team default"
        policy.error_messages["invalid_choice"] = "Choose one of this team's policies."
        parents = self.fields["depends_on"]
        parents.queryset = Check.objects.filter(team=team).order_by("name")
        if self.instance.pk:
            parents.queryset = parents.queryset.exclude(pk=self.instance.pk)
        parents.error_messages["invalid_choice"] = "Choose checks of this team."
        parents.error_messages["invalid_pk_value"] = "Choose checks of this team."

    @staticmethod
    def _count_validator(label, low, high):
        def validate(value):
            if value is not None and not low <= value <= high:
                raise forms.ValidationError(f"{label} must be from {low} to {high}.")

        return validate

    def fieldsets(self):
        """(legend, bound fields) in the order of FIELDSETS, for the template."""
        return [(legend, [self[name] for name in names]) for legend, names in FIELDSETS]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name is required.")
        return name

    def clean_tags(self):
        return cleaned_tags(self.cleaned_data["tags"])

    def _clean_interval(self, name, label, minimum=schedule.MIN_INTERVAL):
        return cleaned_interval(self.cleaned_data.get(name), label, minimum)

    def clean_period(self):
        return self._clean_interval("period", "Period")

    def clean_grace(self):
        return self._clean_interval("grace", "Grace", schedule.MIN_THRESHOLD)

    def clean_flap_window(self):
        if self.cleaned_data.get("flap_window") is None:
            return Check._meta.get_field("flap_window").get_default()
        return self._clean_interval("flap_window", "Flap window")

    def _clean_optional_interval(self, name):
        if self.cleaned_data.get(name) is None:
            return None
        return self._clean_interval(name, OPTIONAL_DURATIONS[name], schedule.MIN_THRESHOLD)

    def clean_max_runtime(self):
        return self._clean_optional_interval("max_runtime")

    def clean_progress_timeout(self):
        return self._clean_optional_interval("progress_timeout")

    def clean_severity_raise_after(self):
        return self._clean_optional_interval("severity_raise_after")

    def clean_depends_on(self):
        parents = list(self.cleaned_data.get("depends_on") or [])
        if len(parents) > MAX_DEPENDENCIES:
            raise forms.ValidationError(f"A check may depend on at most {MAX_DEPENDENCIES}.")
        if self.instance.pk:
            cycle = dependency_cycle(self.instance.pk, [p.pk for p in parents])
            if cycle:
                raise forms.ValidationError(
                    f"“{cycle}” already depends on this check (directly or through others): "
                    "a check cannot depend on itself."
                )
        return parents

    def clean_partial_max_ratio(self):
        ratio = self.cleaned_data.get("partial_max_ratio")
        if ratio is not None and not 0 <= ratio <= 1:
            raise forms.ValidationError("The failed ratio must be from 0 to 1, e.g. 0.05 for 5%.")
        return ratio

    def clean_transient_exit_statuses(self):
        text = self.cleaned_data.get("transient_exit_statuses", "")
        try:
            statuses = parse_exit_statuses(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return " ".join(str(status) for status in sorted(statuses))

    def clean_timezone(self):
        return cleaned_timezone(self.cleaned_data.get("timezone"))

    def clean_schedule_expression(self):
        return " ".join((self.cleaned_data.get("schedule_expression") or "").split())

    def _clean_schedule(self, cleaned):
        kind = cleaned.get("schedule_kind")
        if kind is None or kind == ScheduleKind.PERIOD:
            return  # the period has its own field validation
        if "timezone" not in cleaned or "schedule_expression" not in cleaned:
            return
        candidate = schedule_from(
            kind, cleaned.get("period"), cleaned["schedule_expression"], cleaned["timezone"]
        )
        try:
            schedule.validate_schedule(candidate, now=database_now())
        except ScheduleError as exc:
            self.add_error(schedule_error_field(str(exc)), str(exc))

    def clean(self):
        cleaned = super().clean()
        for name in DEFAULTED:
            if name in cleaned and cleaned[name] in self.fields[name].empty_values:
                cleaned[name] = Check._meta.get_field(name).get_default()
        self._clean_schedule(cleaned)
        slug = cleaned.get("slug") or slugify(cleaned.get("name") or "")
        if not slug and "name" in cleaned:
            self.add_error("slug", "Could not derive a slug from the name; please enter one.")
            return cleaned
        clash = Check.objects.filter(team=self.team, slug=slug)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if slug and clash.exists():
            self.add_error("slug", f"Another check of this team already uses the slug “{slug}”.")
        cleaned["slug"] = slug
        return cleaned

    def save(self, commit=True):
        """Save the check in the form's team. Returns None, with an error on the slug, when a
        concurrent request took the same slug between clean() and the INSERT (the unique
        constraint is the real guard; clean() only gives the early, friendly message)."""
        check = super().save(commit=False)
        check.team = self.team
        check.slug = self.cleaned_data["slug"]
        if not commit:
            return check
        try:
            with transaction.atomic():
                check.save()
                self.save_m2m()
        except IntegrityError:
            self.add_error(
                "slug", f"Another check of this team already uses the slug “{check.slug}”."
            )
            return None
        return check


def dependency_cycle(check_id, parent_ids) -> str | None:
    """The name of a chosen parent that (transitively) depends on `check_id`, else None."""
    through = Check.depends_on.through
    for parent_id in parent_ids:
        seen, frontier = set(), {parent_id}
        while frontier:
            if check_id in frontier:
                return Check.objects.get(pk=parent_id).name
            seen |= frontier
            frontier = (
                set(
                    through.objects.filter(from_check_id__in=frontier).values_list(
                        "to_check_id", flat=True
                    )
                )
                - seen
            )
    return None


class SchedulePreviewForm(forms.Form):
    """The schedule fields alone, read from the query string of the form's live preview."""

    schedule_kind = forms.ChoiceField(choices=Check.ScheduleKind.choices, required=False)
    period = DurationInput("Period", precise=True, required=False)
    schedule_expression = forms.CharField(max_length=500, required=False)
    timezone = forms.CharField(max_length=64, required=False)

    def schedule(self) -> Schedule:
        """The validated schedule; raises ScheduleError with the message to show."""
        if not self.is_valid():
            errors = next(iter(self.errors.values()))
            raise ScheduleError(errors[0])
        data = self.cleaned_data
        candidate = schedule_from(
            data["schedule_kind"], data["period"], data["schedule_expression"], data["timezone"]
        )
        if candidate.kind == ScheduleKind.PERIOD and data["period"] is None:
            raise ScheduleError("Enter a period.")
        return schedule.validate_schedule(candidate, now=database_now())


class TeamSwitchForm(forms.Form):
    # Bounded so that a hostile value never reaches the database as an out-of-range integer.
    team_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)


# Worst first: what needs attention sorts to the top.
STATUS_URGENCY = ["down", "late", "unknown", "up", "new", "paused"]
SORT_CHOICES = [
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("status", "Status, worst first"),
    ("-last_ping", "Last ping, newest first"),
    ("last_ping", "Last ping, oldest first"),
]


class CheckFilterForm(forms.Form):
    """The check list's filters, read from the query string so that a filtered list is a link
    and survives polling and the back button. Unknown values are reported, not applied."""

    q = forms.CharField(max_length=100, required=False, label="Search by name")
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Check.Status.choices],
        required=False,
        label="Status",
        error_messages={"invalid_choice": "Unknown status “%(value)s”; showing every status."},
    )
    tag = forms.CharField(max_length=MAX_TAG_LENGTH, required=False, label="Tag")
    environment = forms.CharField(max_length=50, required=False, label="Environment")
    sort = forms.ChoiceField(
        choices=SORT_CHOICES,
        required=False,
        label="Sort by",
        error_messages={"invalid_choice": "Unknown order “%(value)s”; sorted by name."},
    )

    def __init__(self, *args, tags=(), environments=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Offer what exists in the team; typed values (from a link) still work.
        self.fields["tag"].widget = forms.Select(choices=[("", "Any tag")] + [(t, t) for t in tags])
        self.fields["environment"].widget = forms.Select(
            choices=[("", "Any environment")] + [(e, e) for e in environments]
        )

    def filters(self) -> dict:
        """The valid filters; an invalid one is left out (its error is shown instead)."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}

    def apply(self, checks):
        chosen = self.filters()
        if "q" in chosen:
            checks = checks.filter(name__icontains=chosen["q"].strip())
        if "status" in chosen:
            checks = checks.filter(status=chosen["status"])
        if "environment" in chosen:
            checks = checks.filter(environment=chosen["environment"])
        if "tag" in chosen:
            # Tags are one space-separated string; pad it so " db " never matches "dbx".
            checks = checks.annotate(
                padded_tags=Concat(Value(" "), "tags", Value(" "), output_field=CharField())
            ).filter(padded_tags__contains=f" {chosen['tag']} ")
        return checks.order_by(*self._ordering(chosen.get("sort", "name")))

    @staticmethod
    def _ordering(sort: str) -> list:
        if sort == "status":
            urgency = Case(
                *[When(status=s, then=Value(i)) for i, s in enumerate(STATUS_URGENCY)],
                default=Value(len(STATUS_URGENCY)),
            )
            return [urgency, "name"]
        if sort in ("last_ping", "-last_ping"):
            field = F("last_ping_at")
            # Checks that never pinged go last either way.
            return [
                field.desc(nulls_last=True) if sort.startswith("-") else field.asc(nulls_last=True),
                "name",
            ]
        # Case-insensitive, whatever the database's collation: "cleanup" before "Weekly".
        name = Lower("name")
        return [name.desc() if sort == "-name" else name.asc(), "id"]
