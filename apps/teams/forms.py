from datetime import timedelta

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import MaxValueValidator, MinValueValidator

from apps.checks import schedule
from apps.checks.clock import database_now
from apps.checks.schedule import ScheduleError, ScheduleKind
from apps.dashboard.forms import (
    DurationInput,
    cleaned_interval,
    cleaned_tags,
    cleaned_timezone,
    schedule_error_field,
    schedule_from,
)
from apps.escalation.models import EscalationPolicy

from .models import CheckDefaults, Membership


class AccountForm(UserCreationForm):
    """Username and a password typed twice, checked by Django's password validators."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocapitalize="none", autocomplete="username")
        self.fields["username"].help_text = "Letters, digits and @ . + - _ only; 150 at most."
        self.fields["password1"].help_text = "At least 8 characters, and not a common password."


class SignUpForm(AccountForm):
    email = forms.EmailField(
        max_length=254, help_text="For password resets and alerts.", label="Email"
    )
    team_name = forms.CharField(
        max_length=100, label="Team name", help_text="You can invite others to it afterwards."
    )

    field_order = ["team_name", "username", "email", "password1", "password2"]

    def clean_team_name(self):
        name = self.cleaned_data["team_name"].strip()
        if not name:
            raise forms.ValidationError("Enter a team name.")
        return name


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email address")
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        initial=Membership.Role.MEMBER,
        label="Role",
        error_messages={"invalid_choice": "Choose owner, admin, member or viewer."},
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        error_messages={"invalid_choice": "Choose owner, admin, member or viewer."},
    )


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
        policy.queryset = EscalationPolicy.objects.filter(team=team).order_by("name")
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
