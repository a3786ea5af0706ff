"""CheckForm and TeamSwitchForm: valid, malformed, oversized, missing and hostile input."""

from datetime import timedelta

import pytest

from apps.checks.forms import CheckForm
from apps.checks.models import Check
from apps.dashboard.forms import TeamSwitchForm
from tests.factories import CheckFactory

VALID = {
    "name": "Nightly backup",
    "slug": "",
    "environment": "production",
    "tags": "db nightly",
    "description": "Dumps the main database to S3.",
    "period_0": "1",
    "period_1": "days",
    "grace_0": "2",
    "grace_1": "hours",
}


def form_for(team, **changes):
    data = {**VALID, **changes}
    return CheckForm({k: v for k, v in data.items() if v is not None}, team=team)


def test_valid_form_creates_check_in_its_team_with_derived_slug(team):
    form = form_for(team)
    assert form.is_valid(), form.errors
    check = form.save()
    check.refresh_from_db()
    assert check.team == team
    assert check.slug == "nightly-backup"
    assert check.period == timedelta(days=1)
    assert check.grace == timedelta(hours=2)
    assert check.status == Check.Status.NEW


@pytest.mark.parametrize(
    ("amount", "unit", "expected"),
    [
        ("1", "minutes", timedelta(minutes=1)),
        ("60", "seconds", timedelta(minutes=1)),
        ("90", "seconds", timedelta(seconds=90)),
        ("90", "minutes", timedelta(minutes=90)),
        ("24", "hours", timedelta(days=1)),
        ("365", "days", timedelta(days=365)),
    ],
    ids=["lower-bound", "lower-bound-in-seconds", "seconds", "minutes", "hours", "upper-bound"],
)
def test_period_accepts_the_range_from_one_minute_to_365_days(team, amount, unit, expected):
    form = form_for(team, period_0=amount, period_1=unit)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["period"] == expected


@pytest.mark.parametrize(
    ("field", "amount", "unit", "message"),
    [
        ("period", "0", "minutes", "Period must be at least 1 minute."),
        ("period", "-5", "hours", "Period must be at least 1 minute."),
        ("period", "59", "seconds", "Period must be at least 1 minute."),
        ("period", "100000001", "seconds", "Period must be at most 365 days."),
        ("period", "366", "days", "Period must be at most 365 days."),
        ("period", "8761", "hours", "Period must be at most 365 days."),
        ("period", "10000001", "days", "Period must be at most 365 days."),
        ("grace", "525601", "minutes", "Grace must be at most 365 days."),
        ("grace", "0", "days", "Grace must be at least 1 second."),
        ("grace", "31536001", "seconds", "Grace must be at most 365 days."),
        ("period", "1.5", "hours", "Enter a whole number."),
        ("period", "abc", "hours", "Enter a whole number."),
        ("period", "1e3", "hours", "Enter a whole number."),
        ("period", "1", "weeks", "Choose seconds, minutes, hours or days."),
        ("grace", "1", "<script>", "Choose seconds, minutes, hours or days."),
        ("period", "", "hours", "This field is required."),
        ("grace", None, None, "This field is required."),
    ],
    ids=[
        "zero",
        "negative",
        "59-seconds",
        "absurd-seconds",
        "366-days",
        "over-a-year-in-hours",
        "absurdly-large",
        "grace-over-a-year",
        "grace-zero",
        "grace-over-a-year-in-seconds",
        "fraction",
        "letters",
        "exponent",
        "unknown-unit",
        "hostile-unit",
        "missing-amount",
        "missing-grace",
    ],
)
def test_bad_period_or_grace_gets_a_clear_error_on_that_field(team, field, amount, unit, message):
    form = form_for(team, **{f"{field}_0": amount, f"{field}_1": unit})
    assert not form.is_valid()
    assert message in form.errors[field]
    assert set(form.errors) == {field}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "x" * 101}, "name", "at most 100 characters (it has 101)"),
        ({"name": ""}, "name", "This field is required."),
        ({"name": "   "}, "name", "This field is required."),
        ({"name": None}, "name", "This field is required."),
        ({"name": "bad\x00name"}, "name", "Null characters are not allowed."),
        ({"description": "d" * 5001}, "description", "at most 5000 characters (it has 5001)"),
        ({"environment": "e" * 51}, "environment", "at most 50 characters (it has 51)"),
        ({"tags": "ok " + "t" * 51}, "tags", "Each tag must be at most 50 characters"),
        ({"tags": "t " * 251}, "tags", "at most 500 characters"),
        ({"slug": "not a slug!"}, "slug", "Enter a valid “slug”"),
        ({"slug": "s" * 101}, "slug", "at most 100 characters (it has 101)"),
        ({"name": "!!!", "slug": ""}, "slug", "Could not derive a slug from the name"),
    ],
    ids=[
        "name-101",
        "name-empty",
        "name-blank",
        "name-missing",
        "name-nul",
        "description-5001",
        "environment-51",
        "tag-51",
        "tags-over-500",
        "slug-with-spaces",
        "slug-101",
        "underivable-slug",
    ],
)
def test_malformed_or_oversized_field_is_refused_with_its_error(team, changes, field, message):
    form = form_for(team, **changes)
    assert not form.is_valid()
    assert any(message in error for error in form.errors[field]), form.errors
    assert Check.objects.count() == 0


def test_limits_themselves_are_accepted(team):
    form = form_for(
        team,
        name="n" * 100,
        description="d" * 5000,
        environment="e" * 50,
        tags="t" * 50,
        slug="s" * 100,
    )
    assert form.is_valid(), form.errors


def test_tags_split_on_spaces_and_commas_and_repeat_once(team):
    form = form_for(team, tags=" db, nightly,,db\tbackup ")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["tags"] == "db nightly backup"


def test_hostile_name_is_kept_verbatim_for_escaping_at_render(team):
    form = form_for(team, name="<script>alert(1)</script>")
    assert form.is_valid(), form.errors
    check = form.save()
    assert check.name == "<script>alert(1)</script>"
    assert check.slug == "scriptalert1script"


def test_slug_must_be_unique_within_the_team(team):
    CheckFactory(team=team, slug="nightly-backup")
    form = form_for(team)
    assert not form.is_valid()
    assert "already uses the slug “nightly-backup”" in form.errors["slug"][0]


def test_same_slug_in_another_team_is_fine(team, other_team):
    CheckFactory(team=other_team, slug="nightly-backup")
    assert form_for(team).is_valid()


def test_slug_taken_between_validation_and_save_is_a_form_error_not_a_crash(team):
    form = form_for(team)
    assert form.is_valid()
    CheckFactory(team=team, slug="nightly-backup")  # a concurrent request wins the race
    assert form.save() is None
    assert "already uses the slug" in form.errors["slug"][0]
    assert Check.objects.filter(team=team).count() == 1


def test_team_cannot_be_chosen_through_the_form(team, other_team):
    form = CheckForm({**VALID, "team": str(other_team.id)}, team=team)
    assert form.is_valid()
    assert form.save().team == team


def test_unbound_form_shows_defaults_of_one_day_and_one_hour(team):
    html = str(CheckForm(team=team)["period"]) + str(CheckForm(team=team)["grace"])
    assert 'name="period_0" value="1"' in html
    assert '<option value="days" selected>' in html
    assert '<option value="hours" selected>' in html


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("3", True),
        ("", False),
        ("abc", False),
        ("0", False),
        ("-1", False),
        (str(2**63), False),
        ("1 OR 1=1", False),
    ],
    ids=["id", "empty", "letters", "zero", "negative", "over-bigint", "sql"],
)
def test_team_switch_form_takes_only_a_positive_id(value, valid):
    assert TeamSwitchForm({"team_id": value}).is_valid() is valid


@pytest.mark.parametrize(
    ("field", "amount", "unit", "expected"),
    [
        ("grace", "10", "seconds", timedelta(seconds=10)),
        ("max_runtime", "1", "seconds", timedelta(seconds=1)),
        ("max_runtime", "45", "seconds", timedelta(seconds=45)),
        ("progress_timeout", "90", "seconds", timedelta(seconds=90)),
    ],
    ids=["grace-10s", "runtime-1s", "runtime-45s", "progress-90s"],
)
def test_run_thresholds_take_seconds_for_short_jobs(team, field, amount, unit, expected):
    form = form_for(team, **{f"{field}_0": amount, f"{field}_1": unit})
    assert form.is_valid(), form.errors
    assert form.cleaned_data[field] == expected


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (45, [45, "seconds"]),
        (90, [90, "seconds"]),
        (120, [2, "minutes"]),
        (5400, [90, "minutes"]),
        (7200, [2, "hours"]),
        (86400, [1, "days"]),
        (86401, [86401, "seconds"]),
    ],
)
def test_a_saved_duration_is_shown_in_the_largest_exact_unit(seconds, shown):
    from apps.checks.form_fields import DurationInput

    assert DurationInput.decompress(timedelta(seconds=seconds)) == shown
