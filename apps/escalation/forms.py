"""Forms of the escalation pages. Every choice (members, channels, rotations, checks) is built
from the form's team, so a submitted id of another team's object is an invalid choice, never a
reference into that team."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from django import forms
from django.db import transaction

from apps.checks.form_fields import DurationInput
from apps.checks.models import Check
from apps.teams.models import Membership

from .holds import matching_checks
from .models import SEVERITY_NAMES, EscalationPolicy, Rotation
from .signals import team_channels

SEVERITY_CHOICES = [(name, name) for name in SEVERITY_NAMES]
MAX_REPEAT = 20
MAX_STEPS = 20
MAX_ROTATION_MEMBERS = 50
MAX_TEXT = 1000
LONGEST_SILENCE = timedelta(days=90)


def member_choices(team) -> list[tuple[str, str]]:
    members = Membership.objects.filter(team=team).select_related("user").order_by("user__username")
    return [(str(m.user_id), m.user.get_username()) for m in members]


def target_choices(team) -> list[tuple[str, str]]:
    """Everything a step may notify, as "kind:id" values."""
    choices = [(f"team:{team.id}", "Everyone on the team")]
    choices += [(f"user:{value}", f"Member {label}") for value, label in member_choices(team)]
    choices += [
        (f"channel:{channel_id}", f"Channel {name}")
        for channel_id, name in team_channels(team.id).items()
    ]
    choices += [
        (f"rotation:{r.id}", f"On call in {r.name}")
        for r in Rotation.objects.filter(team=team).order_by("name")
    ]
    return choices


def valid_timezone(value: str) -> str:
    value = (value or "").strip() or "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise forms.ValidationError(
            f"“{value[:64]}” is not a timezone such as Europe/Riga."
        ) from None
    return value


class PolicyForm(forms.ModelForm):
    reminder_interval = DurationInput("Remind every", required=False)
    ack_timeout = DurationInput("Acknowledgment timeout", required=False)
    severities = forms.MultipleChoiceField(
        choices=SEVERITY_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only incidents of these severities use this policy. None ticked: all.",
    )

    repeat = forms.IntegerField(
        required=False,
        label="Repeat the steps",
        help_text=f"After the last step, run all steps again this many times (0-{MAX_REPEAT}).",
        error_messages={"invalid": "Enter a whole number."},
    )

    class Meta:
        model = EscalationPolicy
        fields = ["name", "is_default", "repeat", "reminder_interval", "ack_timeout", "severities"]
        labels = {"is_default": "Team default"}
        help_texts = {"is_default": "Used by every check that names no policy."}

    def __init__(self, *args, team, steps_after: int | None = None, **kwargs):
        """`steps_after`: how many steps the policy will have once saved (the API replaces
        them in the same request); by default, the steps it has."""
        super().__init__(*args, **kwargs)
        self.team = team
        if steps_after is None:
            steps_after = self.instance.steps.count() if self.instance.pk else 0
        self.steps_after = steps_after
        self.fields["repeat"].widget.attrs.update(min=0, max=MAX_REPEAT)
        self.fields[
            "reminder_interval"
        ].help_text = (
            "Once the repeats are used up, remind until acknowledged. Empty: no reminders."
        )
        self.fields["ack_timeout"].help_text = (
            "An acknowledged incident still failing after this long is triggered again. "
            "Empty: never."
        )
        if self.instance.pk:
            self.initial["severities"] = self.instance.severities.split()

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name is required.")
        clash = EscalationPolicy.objects.filter(team=self.team, name=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(f"This team already has a policy named “{name}”.")
        return name

    def clean_repeat(self):
        repeat = self.cleaned_data.get("repeat")
        if repeat is None:
            return 0
        if not 0 <= repeat <= MAX_REPEAT:
            raise forms.ValidationError(f"Repeat must be from 0 to {MAX_REPEAT}.")
        return repeat

    def clean_severities(self):
        return " ".join(sorted(self.cleaned_data.get("severities") or []))

    def clean_is_default(self):
        is_default = self.cleaned_data.get("is_default")
        if is_default and self.steps_after == 0:
            # The default covers every check that names no policy: without steps, their
            # failures would reach nobody at all.
            raise forms.ValidationError(
                "A team default needs at least one step, or the checks that use it notify "
                "nobody: add steps first, then make it the default."
            )
        return is_default

    def save(self, commit=True):
        policy = super().save(commit=False)
        policy.team = self.team
        if commit:
            if policy.is_default:
                # One default per team (a constraint): the new default replaces the old one.
                EscalationPolicy.objects.filter(team=self.team, is_default=True).exclude(
                    pk=policy.pk
                ).update(is_default=False)
            policy.save()
        return policy


class StepForm(forms.Form):
    wait = DurationInput("Then wait", initial=timedelta(minutes=15))
    targets = forms.MultipleChoiceField(
        choices=[],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one target."},
    )
    severities = forms.MultipleChoiceField(
        choices=SEVERITY_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only for these severities; none ticked: all.",
    )

    def __init__(self, *args, team, **kwargs):
        # The policy page also shows PolicyForm, which has a severities field too: ids of their
        # own keep every label pointing at its own checkbox.
        kwargs.setdefault("auto_id", "id_step_%s")
        super().__init__(*args, **kwargs)
        self.fields["targets"].choices = target_choices(team)

    def targets_json(self) -> list[dict]:
        found = []
        for value in self.cleaned_data["targets"]:
            kind, _, raw_id = value.partition(":")
            found.append({"kind": kind, "id": int(raw_id)})
        return found


class PolicyChecksForm(forms.Form):
    """Which of the team's checks use a policy (the check form sets it for new checks)."""

    checks = forms.MultipleChoiceField(
        choices=[], required=False, widget=forms.CheckboxSelectMultiple, label="Checks"
    )

    def __init__(self, *args, team, policy, **kwargs):
        super().__init__(*args, **kwargs)
        checks = Check.objects.filter(team=team).select_related("escalation_policy")
        self.fields["checks"].choices = [
            (
                str(c.id),
                c.name
                + (
                    f" (now {c.escalation_policy.name})"
                    if c.escalation_policy_id and c.escalation_policy_id != policy.id
                    else ""
                ),
            )
            for c in checks.order_by("name")
        ]
        self.initial["checks"] = [str(c.id) for c in checks if c.escalation_policy_id == policy.id]


class OrderedMembersWidget(forms.Widget):
    """Team members in a chosen order: a list of the chosen ones (hidden inputs, in order)
    and a menu to add one. `choices` are (user id, username) of the team."""

    template_name = "escalation/widgets/ordered_members.html"
    use_fieldset = True

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices: list[tuple[str, str]] = []

    def value_from_datadict(self, data, files, name):
        return data.getlist(name) if hasattr(data, "getlist") else data.get(name)

    def value_omitted_from_data(self, data, files, name):
        return False  # no member posted means none chosen, not "keep the old ones"

    def format_value(self, value):
        if value is None:
            return []
        return [str(v) for v in (value if isinstance(value, list | tuple) else [value])]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        names = dict(self.choices)
        # A posted id that is not a member (refused by the form) is not shown back.
        context["widget"]["chosen"] = [
            (v, names[v]) for v in context["widget"]["value"] if v in names
        ]
        context["widget"]["choices"] = self.choices
        return context


class OrderedMembersField(forms.Field):
    """User ids in the posted order; empty entries (the add menu left on "Choose…") dropped."""

    widget = OrderedMembersWidget

    def to_python(self, value):
        if value in self.empty_values:
            return []
        if isinstance(value, str):
            value = [value]
        return [str(v).strip() for v in value if str(v).strip()]


class RotationForm(forms.ModelForm):
    members = OrderedMembersField(
        label="Members, in shift order",
        help_text="The first takes the first shift, then each in turn. Move them up or down, "
        "or remove them; choose a team member to add them at the end.",
        error_messages={"required": "Add at least one member."},
    )

    class Meta:
        model = Rotation
        fields = ["name", "timezone", "cadence", "handoff_time", "start_date"]
        widgets = {
            "handoff_time": forms.TimeInput(attrs={"type": "time"}),
            "start_date": forms.DateInput(attrs={"type": "date"}),
        }
        help_texts = {
            "handoff_time": "Local time (in the timezone) when the next person takes over.",
            "start_date": "The first shift starts at the handoff time on this date.",
        }

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.fields["members"].widget.choices = member_choices(team)
        if self.instance.pk and not self.is_bound:
            self.initial["members"] = [m.user_id for m in self.instance.members.all()]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = Rotation.objects.filter(team=self.team, name=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if not name:
            raise forms.ValidationError("Name is required.")
        if clash.exists():
            raise forms.ValidationError(f"This team already has a rotation named “{name}”.")
        return name

    def clean_timezone(self):
        return valid_timezone(self.cleaned_data.get("timezone"))

    def clean_start_date(self):
        start = self.cleaned_data["start_date"]
        # Handoffs are counted day by day from here: a date at the calendar's edge would
        # overflow the next handoffs' dates on the rotation's page.
        if not 2000 <= start.year <= 9000:
            raise forms.ValidationError("Enter a date between the years 2000 and 9000.")
        return start

    def clean_members(self):
        chosen = self.cleaned_data["members"]
        if len(chosen) > MAX_ROTATION_MEMBERS:
            raise forms.ValidationError(f"At most {MAX_ROTATION_MEMBERS} members.")
        names = dict(member_choices(self.team))
        unknown = [value for value in chosen if value not in names]
        if unknown:
            raise forms.ValidationError(f"“{unknown[0][:50]}” is not a member of this team.")
        twice = next((value for i, value in enumerate(chosen) if value in chosen[:i]), None)
        if twice is not None:
            raise forms.ValidationError(f"{names[twice]} is listed twice: each takes one turn.")
        return [int(value) for value in chosen]

    def save(self, commit=True):
        rotation = super().save(commit=False)
        rotation.team = self.team
        # One transaction: a rotation is never seen (by an escalation) with no members between
        # the delete and the inserts.
        with transaction.atomic():
            rotation.save()
            rotation.members.all().delete()
            for order, user_id in enumerate(self.cleaned_data["members"]):
                rotation.members.create(user_id=user_id, order=order)
        return rotation


def parse_utc(value: str | None, label: str) -> datetime | None:
    """A datetime-local value ("2026-11-02T03:00"), read as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise forms.ValidationError(
            f"{label}: enter a date and time like 2026-11-02T03:00."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Years 1 and 9999 with an offset fall off the calendar, and sums with them overflow later:
    # no silence or override needs a date outside 2000..9000.
    if not 2000 <= parsed.year <= 9000:
        raise forms.ValidationError(f"{label}: enter a date between the years 2000 and 9000.")
    return parsed.astimezone(UTC)


class UTCDateTimeField(forms.Field):
    """A datetime-local input read as UTC; anything longer than a timestamp is refused unread."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"})

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not isinstance(value, str) or len(value) > 40:
            raise forms.ValidationError(
                f"{self.label}: enter a date and time like 2026-11-02T03:00."
            )
        return parse_utc(value, self.label or "Time")


class OverrideForm(forms.Form):
    user = forms.TypedChoiceField(choices=[], coerce=int, label="Who is on call")
    starts_at = UTCDateTimeField(label="From (UTC)")
    ends_at = UTCDateTimeField(label="Until (UTC)")

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = member_choices(team)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("starts_at"), cleaned.get("ends_at")
        if start and end and end <= start:
            self.add_error("ends_at", "The end must be after the start.")
        return cleaned


class MatchersForm(forms.Form):
    """What a silence or maintenance window covers. Matchers that are set narrow each other;
    "whole team" covers everything."""

    checks = forms.MultipleChoiceField(
        choices=[],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Checks",
        help_text=(
            "Checks, tags and environment narrow each other: a check is covered only when it "
            "matches every one of them that is set."
        ),
    )
    tags = forms.CharField(
        max_length=500,
        required=False,
        help_text="Separated by spaces; a check with any one of these tags matches.",
    )
    environment = forms.CharField(max_length=50, required=False)
    whole_team = forms.BooleanField(required=False, label="The whole team")
    comment = forms.CharField(
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why: the people paged later will want to know.",
        error_messages={"required": "A comment is required: say why."},
    )

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.fields["checks"].choices = [
            (str(c.id), c.name) for c in Check.objects.filter(team=team).order_by("name")
        ]

    def clean_comment(self):
        comment = self.cleaned_data["comment"].strip()
        if not comment:
            raise forms.ValidationError("A comment is required: say why.")
        return comment

    def matchers(self) -> dict:
        data = self.cleaned_data
        return {
            "check_ids": sorted(data.get("checks") or []),
            "tags": sorted(set((data.get("tags") or "").replace(",", " ").split())),
            "environment": (data.get("environment") or "").strip(),
            "whole_team": bool(data.get("whole_team")),
        }

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not any(
            [
                cleaned.get("checks"),
                (cleaned.get("tags") or "").strip(),
                (cleaned.get("environment") or "").strip(),
                cleaned.get("whole_team"),
            ]
        ):
            raise forms.ValidationError(
                "Choose what to silence: checks, tags, an environment or the whole team."
            )
        return cleaned


class SilenceForm(MatchersForm):
    starts_at = UTCDateTimeField(label="From (UTC)", required=False, help_text="Empty: now.")
    ends_at = UTCDateTimeField(label="Until (UTC)", required=False)
    duration = DurationInput("Or for", required=False)
    confirm_no_match = forms.BooleanField(
        required=False,
        label="Save it even if it matches no check now",
        help_text="For checks that do not exist yet; otherwise such a silence is a mistake.",
    )
    field_order = ["starts_at", "ends_at", "duration"]

    def __init__(self, *args, now, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now

    def clean(self):
        cleaned = super().clean()
        start = cleaned.get("starts_at") or self.now
        end, duration = cleaned.get("ends_at"), cleaned.get("duration")
        if "ends_at" in cleaned and "duration" in cleaned:
            if end is None and duration is None:
                self.add_error("ends_at", "Give an end time or a duration.")
            elif end is not None and duration is not None:
                self.add_error("duration", "Give an end time or a duration, not both.")
            elif duration is not None and duration > LONGEST_SILENCE:
                self.add_error("duration", "A silence lasts at most 90 days.")
            else:
                end = end or start + duration
                if end <= self.now:
                    self.add_error("ends_at", "The end is in the past.")
                elif end <= start:
                    self.add_error("ends_at", "The end must be after the start.")
                elif end - start > LONGEST_SILENCE:
                    self.add_error("ends_at", "A silence lasts at most 90 days.")
        cleaned["starts_at"], cleaned["ends_at"] = start, end
        if (
            not self.errors
            and not cleaned.get("confirm_no_match")
            and not matching_checks(self.team.id, self.matchers())
        ):
            # A silence that covers nothing silences nothing: most often tags and checks that
            # narrow each other to nobody, or a tag spelled differently.
            self.add_error(
                "confirm_no_match",
                "These matchers match no check of the team: checks, tags and environment "
                "narrow each other (a check must match all that are set). Change them, or "
                "confirm that it should match no check now.",
            )
        return cleaned


class MaintenanceWindowForm(MatchersForm):
    name = forms.CharField(max_length=100)
    cron = forms.CharField(
        max_length=100, help_text="When it opens, e.g. 0 2 * * 0 for Sundays at 02:00."
    )
    duration = DurationInput("Lasting")
    timezone = forms.CharField(max_length=64, initial="UTC", help_text="e.g. Europe/Riga.")
    field_order = ["name", "cron", "duration", "timezone"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name is required.")
        return name

    def clean_cron(self):
        cron = " ".join(self.cleaned_data["cron"].split())
        try:
            CronSim(cron, datetime(2026, 1, 1, tzinfo=UTC))
        except (CronSimError, ValueError) as exc:
            raise forms.ValidationError(f"Not a cron expression: {exc}") from None
        return cron

    def clean_timezone(self):
        return valid_timezone(self.cleaned_data.get("timezone"))

    def clean_duration(self):
        duration = self.cleaned_data.get("duration")
        if duration is not None and duration > timedelta(days=7):
            raise forms.ValidationError("A maintenance window lasts at most 7 days.")
        return duration
