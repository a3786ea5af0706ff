"""The team's defaults for auto-provisioned checks: every member may look, admins may change
them, another team is a 404, and bad input is explained next to its field."""

import re
from datetime import timedelta

import pytest
from django.test import Client

from apps.checks.models import CheckDefaults
from apps.escalation.models import EscalationPolicy
from apps.teams.models import Membership
from tests.factories import MembershipFactory

VALID = {
    "schedule_kind": "period",
    "period_0": "90",
    "period_1": "seconds",
    "schedule_expression": "",
    "timezone": "UTC",
    "grace_0": "30",
    "grace_1": "seconds",
    "tags": "auto",
    "escalation_policy": "",
    "max_checks": "50",
}


def url(team):
    return f"/teams/{team.id}/check-defaults/"


def errors_of(html: str, field: str) -> str:
    found = re.search(rf'id="id_{field}_error">(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


@pytest.fixture
def admin_client(team):
    user = MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="ada").user
    client = Client()
    client.force_login(user)
    return client


def test_admin_saves_defaults(admin_client, team):
    policy = EscalationPolicy.objects.create(team=team, name="Night shift")
    data = {
        **VALID,
        "schedule_kind": "cron",
        "schedule_expression": "  30   2 * * * ",
        "timezone": " Europe/Riga ",
        "tags": "db, nightly db",
        "escalation_policy": str(policy.id),
    }
    response = admin_client.post(url(team), data)
    assert response.status_code == 302
    defaults = CheckDefaults.objects.get(team=team)
    assert (defaults.schedule_kind, defaults.schedule_expression, defaults.timezone) == (
        "cron",
        "30 2 * * *",
        "Europe/Riga",
    )
    assert (defaults.period, defaults.grace) == (timedelta(seconds=90), timedelta(seconds=30))
    assert (defaults.tags, defaults.escalation_policy, defaults.max_checks) == (
        "db nightly",
        policy,
        50,
    )
    page = admin_client.get(url(team)).content.decode()
    assert "Check defaults saved." in page
    assert 'value="90"' in page and 'value="seconds" selected' in page


def test_a_second_save_updates_the_same_row(admin_client, team):
    admin_client.post(url(team), VALID)
    admin_client.post(url(team), {**VALID, "max_checks": "0"})
    assert CheckDefaults.objects.get(team=team).max_checks == 0


def test_the_page_shows_the_defaults_and_the_count_without_creating_a_row(owner_client, team):
    page = owner_client.get(url(team)).content.decode()
    assert "The team has 0 checks; auto-provisioning creates none once it has 500." in page
    assert f"/ping/{team.ping_key}/&lt;slug&gt;?create=1" in page
    assert not CheckDefaults.objects.exists()


def test_refused_pings_are_shown(owner_client, team, t0):
    CheckDefaults.objects.create(
        team=team, max_checks=0, refused_pings=3, last_refused_slug="nightly", last_refused_at=t0
    )
    page = owner_client.get(url(team)).content.decode()
    assert "3 pings asked for a new check beyond the limit and were refused" in page
    assert "“nightly” at 2 Nov 2026, 03:00:00 UTC" in page


@pytest.mark.parametrize("role", [Membership.Role.VIEWER, Membership.Role.MEMBER])
def test_viewers_and_members_see_but_cannot_change(client, team, role):
    user = MembershipFactory(team=team, role=role, user__username="someone").user
    client.force_login(user)
    page = client.get(url(team))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Only admins and owners can change these settings." in html
    assert "Save defaults" not in html
    assert re.search(r'name="max_checks"[^>]*disabled', html)
    assert client.post(url(team), VALID).status_code == 403
    assert not CheckDefaults.objects.exists()


def test_outsider_gets_404(client, team, outsider):
    client.force_login(outsider)
    assert client.get(url(team)).status_code == 404
    assert client.post(url(team), VALID).status_code == 404
    assert not CheckDefaults.objects.exists()


def test_anonymous_is_sent_to_login(client, team):
    response = client.post(url(team), VALID)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not CheckDefaults.objects.exists()


def test_post_without_csrf_token_is_refused(team, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(url(team), VALID).status_code == 403
    assert not CheckDefaults.objects.exists()


def test_another_teams_policy_is_an_invalid_choice(owner_client, team, other_team):
    theirs = EscalationPolicy.objects.create(team=other_team, name="Theirs")
    response = owner_client.post(url(team), {**VALID, "escalation_policy": str(theirs.id)})
    assert response.status_code == 400
    assert "Choose one of this team&#x27;s policies." in errors_of(
        response.content.decode(), "escalation_policy"
    )
    assert CheckDefaults.objects.get(team=team).escalation_policy is None


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"period_0": "59"}, "period", "Period must be at least 1 minute."),
        ({"period_0": "366", "period_1": "days"}, "period", "Period must be at most 365 days."),
        ({"period_0": "-1"}, "period", "Period must be at least 1 minute."),
        ({"period_0": "1e3"}, "period", "Enter a whole number."),
        ({"period_1": "fortnights"}, "period", "Choose seconds, minutes, hours or days."),
        ({"grace_0": "0"}, "grace", "Grace must be at least 1 second."),
        ({"grace_0": ""}, "grace", "This field is required."),
        (
            {"schedule_kind": "cron", "schedule_expression": "61 * * * *"},
            "schedule_expression",
            "Invalid cron expression",
        ),
        ({"schedule_kind": "cron"}, "schedule_expression", "Enter an expression"),
        (
            {"schedule_kind": "cron", "schedule_expression": "0 3 * * *", "timezone": "Mars/Base"},
            "timezone",
            "Unknown timezone",
        ),
        # Checked for a period too: a check provisioned with it must not carry a bad zone.
        ({"schedule_kind": "period", "timezone": "Mars/Base"}, "timezone", "Unknown timezone"),
        ({"schedule_kind": "hourly"}, "schedule_kind", "Select a valid choice."),
        ({"schedule_expression": "x" * 201}, "schedule_expression", "at most 200 characters"),
        ({"tags": "x" * 51}, "tags", "Each tag must be at most 50 characters"),
        ({"tags": "x " * 300}, "tags", "at most 500 characters"),
        ({"max_checks": "-1"}, "max_checks", "greater than or equal to 0"),
        ({"max_checks": "100001"}, "max_checks", "less than or equal to 100000"),
        ({"max_checks": "9" * 30}, "max_checks", "less than or equal to 100000"),
        ({"max_checks": "lots"}, "max_checks", "Enter a whole number."),
        ({"max_checks": ""}, "max_checks", "This field is required."),
        ({"escalation_policy": "99999999999999999999"}, "escalation_policy", "Choose one"),
        ({"timezone": "UTC\x00"}, "timezone", "Null characters are not allowed."),
    ],
    ids=[
        "period-59s",
        "period-366d",
        "period-negative",
        "period-exponent",
        "unknown-unit",
        "grace-zero",
        "grace-missing",
        "bad-cron",
        "cron-without-expression",
        "bad-timezone",
        "bad-timezone-for-a-period",
        "unknown-kind",
        "long-expression",
        "long-tag",
        "long-tags",
        "limit-negative",
        "limit-too-high",
        "limit-absurd",
        "limit-letters",
        "limit-missing",
        "policy-absurd-id",
        "nul",
    ],
)
def test_bad_input_is_explained_next_to_its_field(owner_client, team, changes, field, message):
    response = owner_client.post(url(team), {**VALID, **changes})
    assert response.status_code == 400
    html = response.content.decode()
    assert "The defaults were not saved" in html
    assert message in errors_of(html, field), errors_of(html, field)
    assert CheckDefaults.objects.get(team=team).max_checks == 500  # the row kept its values


def test_hostile_tags_are_stored_verbatim_and_escaped(owner_client, team):
    response = owner_client.post(url(team), {**VALID, "tags": "<script>alert(1)</script>"})
    assert response.status_code == 302
    assert CheckDefaults.objects.get(team=team).tags == "<script>alert(1)</script>"
    html = owner_client.get(url(team)).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_the_members_page_links_to_the_defaults(owner_client, team):
    assert url(team) in owner_client.get(f"/teams/{team.id}/members/").content.decode()
