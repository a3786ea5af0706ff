import re
from datetime import timedelta

from django import forms
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.checks import schedule
from apps.checks.models import Check

UNIT_CHOICES = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
MAX_TAG_LENGTH = 50
# People type "db, nightly" as often as "db nightly": both separate tags.
_TAG_SEPARATORS = re.compile(r"[\s,]+")


class DurationInput(forms.MultiValueField):
    """A number and a unit ("90 minutes"), so nobody has to type ISO 8601 durations."""

    def __init__(self, label, **kwargs):
        fields = (
            forms.IntegerField(
                min_value=1,
                max_value=10**7,
                error_messages={
                    "invalid": "Enter a whole number.",
                    "min_value": f"{label} must be at least 1 minute.",
                    "max_value": f"{label} must be at most 365 days.",
                },
            ),
            forms.ChoiceField(
                choices=UNIT_CHOICES,
                error_messages={"invalid_choice": "Choose minutes, hours or days."},
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
                forms.Select(choices=UNIT_CHOICES, attrs={"aria-label": f"{label} unit"}),
            ]
        )
        self.widget.decompress = self.decompress

    @staticmethod
    def decompress(value):
        if not value:
            return [None, "hours"]
        seconds = int(value.total_seconds())
        for unit in ("days", "hours", "minutes"):
            if seconds % UNIT_SECONDS[unit] == 0:
                return [seconds // UNIT_SECONDS[unit], unit]
        return [seconds // 60, "minutes"]

    def compress(self, data_list):
        if not data_list:
            return None
        amount, unit = data_list
        return timedelta(seconds=amount * UNIT_SECONDS[unit])


class CheckForm(forms.ModelForm):
    period = DurationInput("Period", initial=timedelta(days=1))
    grace = DurationInput("Grace", initial=timedelta(hours=1))

    class Meta:
        model = Check
        fields = ["name", "slug", "environment", "tags", "description", "period", "grace"]
        help_texts = {
            "slug": "Used in /ping/<ping key>/<slug> URLs. Leave blank to derive it from the name.",
            "tags": "Separated by spaces or commas; each at most 50 characters.",
            "environment": "For example production or staging; shown in alerts.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.fields["slug"].required = False

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Name is required.")
        return name

    def clean_tags(self):
        tags = [tag for tag in _TAG_SEPARATORS.split(self.cleaned_data["tags"]) if tag]
        too_long = [tag for tag in tags if len(tag) > MAX_TAG_LENGTH]
        if too_long:
            raise forms.ValidationError(
                f"Each tag must be at most {MAX_TAG_LENGTH} characters; "
                f"“{too_long[0][:20]}…” has {len(too_long[0])}."
            )
        return " ".join(dict.fromkeys(tags))

    def _clean_interval(self, name, label):
        value = self.cleaned_data.get(name)
        message = schedule.interval_error(value, label)
        if message:
            raise forms.ValidationError(message)
        return value

    def clean_period(self):
        return self._clean_interval("period", "Period")

    def clean_grace(self):
        return self._clean_interval("grace", "Grace")

    def clean(self):
        cleaned = super().clean()
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
        except IntegrityError:
            self.add_error(
                "slug", f"Another check of this team already uses the slug “{check.slug}”."
            )
            return None
        return check


class TeamSwitchForm(forms.Form):
    # Bounded so that a hostile value never reaches the database as an out-of-range integer.
    team_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)
