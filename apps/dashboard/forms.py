from django import forms
from django.db.models import Case, CharField, F, Value, When
from django.db.models.functions import Concat, Lower

from apps.checks.form_fields import MAX_TAG_LENGTH
from apps.checks.models import Check


class TeamSwitchForm(forms.Form):
    # Bounded so that a hostile value never reaches the database as an out-of-range integer.
    team_id = forms.IntegerField(min_value=1, max_value=2**63 - 1)


# Worst first: what needs attention sorts to the top.
STATUS_URGENCY = ["down", "late", "unknown", "up", "new", "paused"]
# The first is the default: what needs attention first.
SORT_CHOICES = [
    ("status", "Status, worst first"),
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
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
        error_messages={"invalid_choice": "Unknown order “%(value)s”; sorted worst first."},
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
        return checks.order_by(*self._ordering(chosen.get("sort", "status")))

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
