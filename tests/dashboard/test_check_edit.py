"""Editing a check on the dashboard (/checks/<id>/edit/): admins and owners change every setting
the create form has, dependencies and escalation policy included; the check is judged by the new
settings at once. Members and viewers get 403, another team 404; bad input changes nothing."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from apps.api.check_settings import form_data_for, settings_of
from apps.checks.models import Check
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from apps.escalation.models import EscalationPolicy
from tests.factories import CheckFactory, MembershipFactory


def edit_url(check):
    return reverse("dashboard:check-edit", args=[check.id])


def current_data(check, **changes):
    """What the edit form posts when someone changes `changes` and leaves the rest."""
    data = form_data_for(settings_of(check))
    data["escalation_policy"] = str(check.escalation_policy_id or "")
    data["depends_on"] = [str(parent.id) for parent in check.depends_on.all()]
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def admin(team):
    return MembershipFactory(team=team, role="admin", user__username="carol").user


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def test_the_form_shows_the_checks_current_settings(as_user, admin, check):
    response = as_user(admin).get(edit_url(check))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'value="{check.name}"' in page and "Save changes" in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_admin_changes_grace_dependencies_and_policy(as_user, admin, team, check):
    parent = CheckFactory(team=team, name="database", slug="database")
    policy = EscalationPolicy.objects.create(team=team, name="nights")
    data = current_data(
        check,
        name="Nightly backup (v2)",
        grace_0="45",
        grace_1="seconds",
        depends_on=[str(parent.id)],
        escalation_policy=str(policy.id),
    )
    response = as_user(admin).post(edit_url(check), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    check.refresh_from_db()
    assert check.name == "Nightly backup (v2)"
    assert check.grace == timedelta(seconds=45)
    assert list(check.depends_on.all()) == [parent]
    assert check.escalation_policy == policy
    assert check.team == team  # a form cannot move a check

    # And the dependency can be removed again through the same form.
    as_user(admin).post(edit_url(check), current_data(check, depends_on=[]))
    assert not check.depends_on.exists()


def test_saving_makes_the_check_due_under_its_new_settings(as_user, admin, check):
    now = database_now()
    record_ping(ping=PingData(kind="success", method="GET"), token=check.ping_token, now=now)
    sweep_due_checks(now=now)  # new -> up: the sweeper sets the first deadline
    check.refresh_from_db()
    old_deadline = check.alert_after
    assert old_deadline is not None and old_deadline > database_now() + timedelta(hours=1)

    as_user(admin).post(edit_url(check), current_data(check, period_0="5", period_1="minutes"))
    check.refresh_from_db()
    assert check.period == timedelta(minutes=5)
    assert check.alert_after <= database_now()  # the next sweep recomputes it


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "This field is required"),
        ({"name": "x" * 101}, "at most 100 characters"),
        ({"grace_0": "-5"}, "Grace"),
        ({"grace_0": "abc"}, "Grace"),
        ({"period_1": "fortnights"}, "Choose"),
        ({"schedule_kind": "cron", "schedule_expression": "61 * * * *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "Unknown timezone"),
        ({"escalation_policy": "999999"}, "Choose one of this team"),
        ({"name": "<script>alert(1)</script>\x00"}, "Null characters are not allowed"),
    ],
    ids=[
        "no-name",
        "long-name",
        "negative-grace",
        "text-grace",
        "bad-unit",
        "bad-cron",
        "bad-zone",
        "unknown-policy",
        "hostile-name",
    ],
)
def test_bad_input_is_shown_next_to_the_field_and_changes_nothing(
    as_user, admin, check, changes, message
):
    before = settings_of(Check.objects.get(id=check.id))
    response = as_user(admin).post(edit_url(check), current_data(check, **changes))
    assert response.status_code == 400
    page = response.content.decode()
    assert message.lower() in page.lower()
    assert "The check was not changed" in page
    assert "<script>alert(1)</script>" not in page
    assert settings_of(Check.objects.get(id=check.id)) == before


def test_a_check_cannot_depend_on_itself_or_another_teams_check(as_user, admin, check, other_team):
    theirs = CheckFactory(team=other_team)
    for parents in ([str(check.id)], [str(theirs.id)]):
        response = as_user(admin).post(edit_url(check), current_data(check, depends_on=parents))
        assert response.status_code == 400
    assert not check.depends_on.exists()


def test_another_teams_policy_is_refused(as_user, admin, check, other_team):
    theirs = EscalationPolicy.objects.create(team=other_team, name="theirs")
    response = as_user(admin).post(
        edit_url(check), current_data(check, escalation_policy=str(theirs.id))
    )
    assert response.status_code == 400
    check.refresh_from_db()
    assert check.escalation_policy_id is None


def test_a_slug_already_taken_is_refused(as_user, admin, team, check):
    CheckFactory(team=team, name="other", slug="taken")
    response = as_user(admin).post(edit_url(check), current_data(check, slug="taken"))
    assert response.status_code == 400
    check.refresh_from_db()
    assert check.slug != "taken"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_get_403(as_user, team, check, role):
    user = MembershipFactory(team=team, role=role).user
    client = as_user(user)
    assert client.get(edit_url(check)).status_code == 403
    assert client.post(edit_url(check), current_data(check, name="hacked")).status_code == 403
    assert Check.objects.get(id=check.id).name != "hacked"
    assert (
        'id="edit-check"'
        not in client.get(reverse("dashboard:check-detail", args=[check.id])).content.decode()
    )


def test_another_team_gets_404_and_unknown_checks_404(as_user, outsider, admin, check):
    assert as_user(outsider).post(edit_url(check), current_data(check, name="x")).status_code == 404
    assert as_user(outsider).get(edit_url(check)).status_code == 404
    missing = reverse("dashboard:check-edit", args=["00000000-0000-0000-0000-000000000000"])
    assert as_user(admin).get(missing).status_code == 404


def test_csrf_is_required(admin, check):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post(edit_url(check), current_data(check, name="no token"))
    assert response.status_code == 403
    assert Check.objects.get(id=check.id).name != "no token"


def test_the_check_page_links_admins_to_the_form(as_user, admin, check):
    page = as_user(admin).get(reverse("dashboard:check-detail", args=[check.id])).content.decode()
    assert edit_url(check) in page
