"""Check settings from the API, validated by the dashboard's CheckForm.

The API speaks JSON (durations in seconds, tags and exit statuses as lists); the form speaks
HTML form fields. This module translates between the two so that every rule about a check's
settings (ranges, schedules, slugs, tags) lives in one place, apps/checks/forms.py, and the
API cannot drift from the dashboard.
"""

from datetime import timedelta

from django.db import transaction

from apps.checks.forms import CheckForm
from apps.checks.models import Check
from apps.checks.services import refresh_deadline
from apps.clock import database_now
from apps.teams.models import Team

# Every setting the API reads and writes, by kind of translation.
DURATIONS = ("period", "grace", "flap_window")
OPTIONAL_DURATIONS = ("max_runtime", "progress_timeout", "severity_raise_after")
BOOLEANS = ("post_only", "manual_resume", "email_filter_subject", "email_filter_body")
TEXTS = (
    "name",
    "slug",
    "description",
    "environment",
    "schedule_kind",
    "schedule_expression",
    "timezone",
    "success_keywords",
    "failure_keywords",
    "email_success_keywords",
    "email_failure_keywords",
    "email_start_keywords",
    "severity",
    "severity_raise_to",
)
NUMBERS = (
    "failure_threshold",
    "recovery_threshold",
    "missed_tolerance",
    "partial_max_failed",
    "partial_max_ratio",
    "transient_limit",
    "flap_threshold",
)
# Relations: the policy by id (None: the team's default), the checks this one depends on by id.
RELATIONS = ("escalation_policy", "depends_on")
SETTINGS = (*TEXTS, "tags", *DURATIONS, *OPTIONAL_DURATIONS, *BOOLEANS, *NUMBERS)
SETTINGS += ("transient_exit_statuses", *RELATIONS)

# The form's duration widget counts in seconds, minutes, hours or days; the largest exact unit
# is used only so that the form's messages read naturally.
_UNITS = (("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1))


def seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def settings_of(check: Check) -> dict:
    """The check's settings in the API's JSON shape (also the base a partial update merges
    into; an unsaved Check() gives the defaults)."""
    data = {name: getattr(check, name) for name in (*TEXTS, *BOOLEANS, *NUMBERS)}
    data["tags"] = check.tag_list
    for name in (*DURATIONS, *OPTIONAL_DURATIONS):
        data[name] = seconds(getattr(check, name))
    data["transient_exit_statuses"] = [
        int(part) for part in check.transient_exit_statuses.replace(",", " ").split()
    ]
    # Carried through every update, so that a change that does not name them (a Healthchecks
    # client's, a PATCH) keeps the check's policy and dependencies.
    data["escalation_policy"] = check.escalation_policy_id
    data["depends_on"] = (
        [str(pk) for pk in check.depends_on.order_by("pk").values_list("pk", flat=True)]
        if not check._state.adding
        else []
    )
    return data


def _duration_field(name: str, value, form_data: dict) -> None:
    if value is None:
        form_data[f"{name}_0"], form_data[f"{name}_1"] = "", "seconds"
        return
    # A negative number is left to the form, which says so; 0 is a multiple of every unit.
    for unit, size in _UNITS:
        if value % size == 0:
            form_data[f"{name}_0"], form_data[f"{name}_1"] = str(value // size), unit
            return


def form_data_for(settings: dict) -> dict:
    """The CheckForm data for a complete settings dict."""
    form_data: dict = {}
    for name in TEXTS:
        form_data[name] = settings[name] or ""
    for name in NUMBERS:
        form_data[name] = "" if settings[name] is None else str(settings[name])
    for name in BOOLEANS:
        if settings[name]:
            form_data[name] = "on"
    for name in (*DURATIONS, *OPTIONAL_DURATIONS):
        _duration_field(name, settings[name], form_data)
    form_data["tags"] = " ".join(settings["tags"])
    form_data["transient_exit_statuses"] = " ".join(
        str(status) for status in settings["transient_exit_statuses"]
    )
    policy = settings["escalation_policy"]
    form_data["escalation_policy"] = "" if policy is None else str(policy)
    form_data["depends_on"] = [str(parent) for parent in settings["depends_on"]]
    return form_data


def _form_errors(form) -> dict:
    fields = {}
    for name, messages in form.errors.items():
        fields["non_field_errors" if name == "__all__" else name] = list(messages)
    return fields


class SettingsInvalid(Exception):
    def __init__(self, fields: dict):
        super().__init__("invalid check settings")
        self.fields = fields


def save_check_settings(
    *, team: Team, changes: dict, check: Check | None = None, replace: bool = False
) -> Check:
    """Create (check=None) or update a check from API `changes`, merged over the check's
    current settings, or over the defaults when creating or when `replace` is set (a PUT: what
    the request leaves out is reset). Raises SettingsInvalid with per-field messages.

    An update also makes the check due, so that the sweeper recomputes its deadline under the
    new schedule at once instead of at the old deadline."""
    with transaction.atomic():
        if check is not None:
            # Lock the row and merge into what it holds now: two updates of one check must
            # not interleave their merges.
            check = Check.objects.select_for_update().get(id=check.id)
        base = settings_of(Check(team=team) if check is None or replace else check)
        if check is not None:
            base["slug"] = check.slug  # a PUT without a slug keeps the check's ping URL
        merged = {**base, **{k: v for k, v in changes.items() if k in SETTINGS}}
        form = CheckForm(form_data_for(merged), instance=check, team=team)
        if not form.is_valid():
            raise SettingsInvalid(_form_errors(form))
        saved = form.save()
        if check is not None:
            refresh_deadline(check_id=saved.id, now=database_now())
    return saved
