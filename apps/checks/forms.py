"""The forms that edit a check (dashboard pages and the REST API share them) and the team's
defaults for auto-provisioned checks. Escalation policies are offered through the check's own
foreign key: the field's queryset is narrowed to the team, never another team's policy."""

from datetime import timedelta

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import transaction
from django.urls import reverse_lazy
from django.utils.text import slugify

from apps.clock import database_now

from . import schedule
from .form_fields import (
    DurationInput,
    cleaned_interval,
    cleaned_tags,
    cleaned_timezone,
    schedule_error_field,
    schedule_from,
)
from .models import Check, CheckDefaults, parse_exit_statuses
from .schedule import Schedule, ScheduleError, ScheduleKind

MAX_DEPENDENCIES = 20

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
        "Email pings",
        [
            "email_filter_subject",
            "email_filter_body",
            "email_success_keywords",
            "email_failure_keywords",
            "email_start_keywords",
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
            "email_filter_subject": "Look for keywords in the subject",
            "email_filter_body": "Look for keywords in the body",
            "email_success_keywords": "Success keywords (email)",
            "email_failure_keywords": "Failure keywords (email)",
            "email_start_keywords": "Start keywords (email)",
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
            "email_filter_subject": "Off (both): every mail to the check's address is a success.",
            "email_filter_body": "A mail matching no keyword is only logged: it changes nothing.",
            "email_success_keywords": "One per line or comma; failure keywords are tried first.",
            "email_start_keywords": "One per line or comma: a matching mail starts a run.",
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
            "email_success_keywords": forms.Textarea(attrs={"rows": 2}),
            "email_failure_keywords": forms.Textarea(attrs={"rows": 2}),
            "email_start_keywords": forms.Textarea(attrs={"rows": 2}),
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
        policy.queryset = policy.queryset.filter(team=team).order_by("name")
        policy.empty_label = "Team default"
        policy.error_messages["invalid_choice"] = "Choose one of this team's policies."
        parents = self.fields["depends_on"]
        parents.queryset = Check.objects.filter(team=team).order_by("name")
        if self.instance.pk:
            parents.queryset = parents.queryset.exclude(pk=self.instance.pk)
        # The API shows this message to a client that sent the id (the page's checkboxes
        # offer only valid ones), so it says which id and why.
        parents.error_messages["invalid_choice"] = (
            "“%(value)s” is not another check of this team: a check depends only on other "
            "checks of its own team, never on itself."
        )
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
        # Free names, as in Healthchecks: two checks may share one, and it may be empty.
        return self.cleaned_data["name"].strip()

    def clean_slug(self):
        # Stored in lower case: the ping path looks slugs up in lower case.
        return (self.cleaned_data.get("slug") or "").lower()

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
        # Derived from the name unless given; not unique (a slug two checks share answers
        # 409 to pings, as in Healthchecks), so the form never asks to change one.
        cleaned["slug"] = cleaned.get("slug") or slugify(cleaned.get("name") or "")
        return cleaned

    def save(self, commit=True):
        """Save the check in the form's team."""
        check = super().save(commit=False)
        check.team = self.team
        check.slug = self.cleaned_data["slug"]
        if not commit:
            return check
        with transaction.atomic():
            check.save()
            self.save_m2m()
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


MAX_CHECKS_LIMIT = 100_000


class CheckDefaultsForm(forms.ModelForm):
    """The team's defaults for auto-provisioned checks, with the same rules as a check's own
    settings (schedule, timezone, tags, durations) and this team's policies only."""

    period = DurationInput("Period", precise=True, initial=timedelta(days=1))
    grace = DurationInput(
        "Grace", precise=True, minimum=schedule.MIN_THRESHOLD, initial=timedelta(hours=1)
    )

    class Meta:
        model = CheckDefaults
        fields = [
            "schedule_kind",
            "period",
            "schedule_expression",
            "timezone",
            "grace",
            "tags",
            "escalation_policy",
            "max_checks",
        ]
        labels = {
            "schedule_kind": "Schedule",
            "schedule_expression": "Expression",
            "max_checks": "Most checks auto-provisioning may bring the team to",
        }
        help_texts = {
            "schedule_kind": "Every period after the last ping, or a cron / OnCalendar expression.",
            "schedule_expression": "Cron: 5 fields (0 3 * * *). OnCalendar: Mon..Fri 03:00.",
            "timezone": "IANA name such as Europe/Riga; cron and OnCalendar times are local to it.",
            "tags": "Separated by spaces or commas; each at most 50 characters.",
            "escalation_policy": "Who is notified, and when. Empty: the team's default policy.",
            "max_checks": "Counts every check of the team. Beyond it a ping with ?create=1 is "
            "refused with 403. 0 turns auto-provisioning off.",
        }

    def __init__(self, *args, team, read_only=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        for name in ("schedule_kind", "timezone"):
            self.fields[name].required = False
        policy = self.fields["escalation_policy"]
        policy.queryset = policy.queryset.filter(team=team).order_by("name")
        policy.empty_label = "Team default"
        policy.error_messages["invalid_choice"] = "Choose one of this team's policies."
        limit = self.fields["max_checks"]
        limit.min_value, limit.max_value = 0, MAX_CHECKS_LIMIT
        limit.validators = [MinValueValidator(0), MaxValueValidator(MAX_CHECKS_LIMIT)]
        limit.widget.attrs.update(min=0, max=MAX_CHECKS_LIMIT)
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean_period(self):
        return cleaned_interval(self.cleaned_data.get("period"), "Period")

    def clean_grace(self):
        return cleaned_interval(self.cleaned_data.get("grace"), "Grace", schedule.MIN_THRESHOLD)

    def clean_schedule_kind(self):
        return self.cleaned_data.get("schedule_kind") or ScheduleKind.PERIOD.value

    def clean_timezone(self):
        return cleaned_timezone(self.cleaned_data.get("timezone"))

    def clean_schedule_expression(self):
        return " ".join((self.cleaned_data.get("schedule_expression") or "").split())

    def clean_tags(self):
        return cleaned_tags(self.cleaned_data["tags"])

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("schedule_kind")
        if (
            kind
            and kind != ScheduleKind.PERIOD
            and {"timezone", "schedule_expression"} <= set(cleaned)
        ):
            candidate = schedule_from(
                kind, cleaned.get("period"), cleaned["schedule_expression"], cleaned["timezone"]
            )
            try:
                schedule.validate_schedule(candidate, now=database_now())
            except ScheduleError as exc:
                self.add_error(schedule_error_field(str(exc)), str(exc))
        return cleaned
