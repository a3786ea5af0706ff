"""The check form's escalation fields: the policy and the checks it depends on, both from the
check's own team, and no dependency cycles."""

import pytest

from apps.checks.forms import MAX_DEPENDENCIES, CheckForm
from apps.checks.models import Check
from tests.factories import CheckFactory

from .helpers import make_policy

VALID = {
    "name": "Nightly report",
    "period_0": "1",
    "period_1": "days",
    "grace_0": "1",
    "grace_1": "hours",
}


def form_for(team, instance=None, **changes):
    return CheckForm({**VALID, **changes}, team=team, instance=instance)


def test_check_gets_a_policy_and_parents_of_its_team(team, owner, check):
    policy = make_policy(team, [(10, [("user", owner.id)])])
    form = form_for(team, escalation_policy=str(policy.id), depends_on=[str(check.id)])
    assert form.is_valid(), form.errors
    saved = form.save()
    assert saved.escalation_policy == policy
    assert list(saved.depends_on.all()) == [check]
    assert list(check.dependents.all()) == [saved]


def test_empty_policy_means_the_team_default(team):
    form = form_for(team, escalation_policy="")
    assert form.is_valid(), form.errors
    assert form.save().escalation_policy is None
    assert '<option value="" selected>Team default</option>' in str(form["escalation_policy"])


def test_another_teams_policy_is_refused(team, other_team, outsider):
    theirs = make_policy(other_team, [(10, [("user", outsider.id)])])
    form = form_for(team, escalation_policy=str(theirs.id))
    assert not form.is_valid()
    assert form.errors["escalation_policy"] == ["Choose one of this team's policies."]
    assert not Check.objects.filter(name="Nightly report").exists()


@pytest.mark.parametrize("value", ["abc", "-1", "9" * 30, "<script>", "1; DROP TABLE"])
def test_malformed_policy_is_refused(team, value):
    form = form_for(team, escalation_policy=value)
    assert not form.is_valid()
    assert "escalation_policy" in form.errors


def test_another_teams_check_cannot_be_a_parent(team, other_team):
    theirs = CheckFactory(team=other_team)
    form = form_for(team, depends_on=[str(theirs.id)])
    assert not form.is_valid()
    assert form.errors["depends_on"] == [
        f"“{theirs.id}” is not another check of this team: a check depends only on other "
        "checks of its own team, never on itself."
    ]


@pytest.mark.parametrize("value", ["not-a-uuid", "", "<b>x</b>", "0" * 500])
def test_malformed_parent_is_refused(team, value):
    form = form_for(team, depends_on=[value])
    assert not form.is_valid()
    assert "depends_on" in form.errors


def test_a_check_cannot_depend_on_itself(team, check):
    form = form_for(team, instance=check, depends_on=[str(check.id)])
    assert not form.is_valid()
    assert "never on itself" in form.errors["depends_on"][0]


def test_a_dependency_cycle_is_refused(team):
    a = CheckFactory(team=team, name="a")
    b = CheckFactory(team=team, name="b")
    c = CheckFactory(team=team, name="c")
    b.depends_on.add(a)  # b -> a
    c.depends_on.add(b)  # c -> b -> a
    form = form_for(team, instance=a, name="a", slug=a.slug, depends_on=[str(c.id)])
    assert not form.is_valid()
    assert "“c” already depends on this check" in form.errors["depends_on"][0]
    assert not a.depends_on.exists()


def test_a_diamond_is_not_a_cycle(team):
    a, b, c, d = (CheckFactory(team=team, name=n) for n in "abcd")
    b.depends_on.add(a)
    c.depends_on.add(a)
    form = form_for(team, instance=d, name="d", slug=d.slug, depends_on=[str(b.id), str(c.id)])
    assert form.is_valid(), form.errors


def test_too_many_parents_are_refused(team):
    parents = CheckFactory.create_batch(MAX_DEPENDENCIES + 1, team=team)
    form = form_for(team, depends_on=[str(p.id) for p in parents])
    assert not form.is_valid()
    assert f"at most {MAX_DEPENDENCIES}" in form.errors["depends_on"][0]


def test_the_create_page_shows_and_saves_the_fields(owner_client, team, owner, check):
    policy = make_policy(team, [(10, [("user", owner.id)])], name="Night shift")
    page = owner_client.get("/checks/new/").content.decode()
    assert "Night shift" in page and "nightly-backup" in page and "Depends on" in page
    response = owner_client.post(
        "/checks/new/",
        {**VALID, "escalation_policy": str(policy.id), "depends_on": [str(check.id)]},
    )
    assert response.status_code == 302
    created = Check.objects.get(name="Nightly report")
    assert created.escalation_policy == policy and list(created.depends_on.all()) == [check]
