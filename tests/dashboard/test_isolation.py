"""Team isolation: another team's objects are 404 (never 403, which would confirm they exist),
anonymous visitors go to the login page, and a viewer may look but not act."""

import re
import uuid

import pytest
from django.urls import reverse

from apps.checks.models import Check, Flip
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from apps.incidents.models import Incident
from apps.notifications.models import Notification

ACTIONS = ["acknowledge", "resolve"]
HTMX = {"HX-Request": "true"}


@pytest.fixture
def incident(check, owner, member, viewer):
    """A real incident on team A's check: a failure ping with a body, then a sweep."""
    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=3, body=b"secret log line"),
        token=check.ping_token,
    )
    sweep_due_checks(now=database_now())
    return Incident.objects.get(owner=check)


@pytest.fixture
def outsider_client(client, outsider):
    client.force_login(outsider)
    return client


def snapshot(incident: Incident) -> tuple:
    """Everything an action could change."""
    incident.refresh_from_db()
    return (
        incident.state,
        incident.acknowledged_at,
        incident.acknowledged_by_id,
        incident.resolved_at,
        incident.resolved_by_id,
        incident.resolution,
        Notification.objects.count(),
        Flip.objects.count(),
        Check.objects.get(id=incident.owner_id).status,
    )


def team_a_pages(check: Check, incident: Incident) -> dict[str, str]:
    return {
        "check-page": reverse("dashboard:check-detail", args=[check.id]),
        "ping-body": reverse("dashboard:ping-body", args=[check.id, 1]),
        "incident-page": reverse("dashboard:incident-detail", args=[incident.id]),
    }


@pytest.mark.parametrize("page", ["check-page", "ping-body", "incident-page"])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_outsider_gets_404_on_another_teams_pages(outsider_client, check, incident, page, htmx):
    response = outsider_client.get(
        team_a_pages(check, incident)[page], headers=HTMX if htmx else {}
    )
    assert response.status_code == 404
    body = response.content.decode()
    for secret in (check.name, str(check.ping_token), check.team.ping_key, "secret log line"):
        assert secret not in body


def without_csrf(response) -> str:
    return re.sub(r"[A-Za-z0-9]{64}", "TOKEN", response.content.decode())


def test_outsider_404_is_the_same_as_for_a_check_that_does_not_exist(outsider_client, check):
    theirs = outsider_client.get(reverse("dashboard:check-detail", args=[check.id]))
    nowhere = outsider_client.get(reverse("dashboard:check-detail", args=[uuid.uuid4()]))
    # The same page but for the CSRF token, which is masked afresh on every page.
    assert (theirs.status_code, without_csrf(theirs)) == (
        nowhere.status_code,
        without_csrf(nowhere),
    )


def test_member_of_the_team_sees_the_same_pages(client, owner, check, incident):
    # The control for the 404s above: the pages exist and list the pings.
    client.force_login(owner)
    pages = team_a_pages(check, incident)
    check_page = client.get(pages["check-page"])
    assert check_page.status_code == 200
    assert "secret log line" in check_page.content.decode()
    assert client.get(pages["ping-body"]).content == b"secret log line"
    assert client.get(pages["incident-page"]).status_code == 200


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_outsider_gets_404_on_incident_actions_and_nothing_changes(
    outsider_client, incident, action, htmx
):
    before = snapshot(incident)
    response = outsider_client.post(
        reverse("dashboard:incident-action", args=[incident.id, action]),
        headers=HTMX if htmx else {},
    )
    assert response.status_code == 404
    assert snapshot(incident) == before
    assert incident.state == Incident.State.TRIGGERED


def test_outsider_gets_404_on_an_unknown_action_too(outsider_client, incident):
    url = reverse("dashboard:incident-action", args=[incident.id, "delete"])
    assert outsider_client.post(url).status_code == 404


def test_outsider_list_does_not_show_the_other_teams_checks(outsider_client, check):
    response = outsider_client.get(reverse("dashboard:check-list"))
    assert response.status_code == 200
    assert check.name not in response.content.decode()


def test_outsider_cannot_switch_to_the_other_team(outsider_client, check, team):
    response = outsider_client.post(reverse("dashboard:switch-team"), {"team_id": team.id})
    assert response.status_code == 404
    listing = outsider_client.get(reverse("dashboard:check-list")).content.decode()
    assert check.name not in listing


def test_outsider_cannot_create_a_check_in_the_other_team(outsider_client, team, other_team):
    response = outsider_client.post(
        reverse("dashboard:check-create"),
        {
            "name": "sneaky",
            "team": team.id,
            "period_0": 1,
            "period_1": "days",
            "grace_0": 1,
            "grace_1": "hours",
        },
    )
    assert response.status_code == 302
    created = Check.objects.get(name="sneaky")
    assert created.team == other_team


@pytest.mark.parametrize("page", ["check-page", "ping-body", "incident-page"])
def test_anonymous_visitor_is_redirected_to_login(client, check, incident, page):
    url = team_a_pages(check, incident)[page]
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("action", ACTIONS)
def test_anonymous_action_is_redirected_to_login_and_changes_nothing(client, incident, action):
    before = snapshot(incident)
    response = client.post(reverse("dashboard:incident-action", args=[incident.id, action]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert snapshot(incident) == before


@pytest.mark.parametrize("action", ACTIONS)
def test_viewer_gets_403_on_incident_actions_and_nothing_changes(client, viewer, incident, action):
    client.force_login(viewer)
    before = snapshot(incident)
    response = client.post(reverse("dashboard:incident-action", args=[incident.id, action]))
    assert response.status_code == 403
    assert snapshot(incident) == before


def test_viewer_may_read_the_check_and_incident(client, viewer, check, incident):
    client.force_login(viewer)
    for url in team_a_pages(check, incident).values():
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("method", ["get", "post"])
def test_viewer_gets_403_on_check_creation(client, viewer, method):
    client.force_login(viewer)
    data = {"name": "by-viewer", "period_0": 1, "period_1": "days", "grace_0": 1}
    response = getattr(client, method)(reverse("dashboard:check-create"), data)
    assert response.status_code == 403
    assert not Check.objects.filter(name="by-viewer").exists()


def test_member_may_acknowledge_then_resolve(client, member, incident):
    # The control for the refusals above.
    client.force_login(member)
    for action in ACTIONS:
        url = reverse("dashboard:incident-action", args=[incident.id, action])
        assert client.post(url).status_code == 302
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert (incident.acknowledged_by, incident.resolved_by) == (member, member)
