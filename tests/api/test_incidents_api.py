"""/api/tocsin/v1/incidents/: list, read with timeline, acknowledge, resolve."""

from datetime import timedelta

import pytest

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident, IncidentEvent
from apps.notifications.models import Notification
from tests.factories import CheckFactory


@pytest.fixture
def incident(check, owner, t0):
    """A real incident: the job reports a failure and the sweeper opens it."""
    record_ping(
        ping=PingData(kind="fail", method="POST", body=b"disk full"), token=check.ping_token, now=t0
    )
    sweep_due_checks(now=t0 + timedelta(minutes=1))
    return Incident.objects.get(owner=check)


def test_list_shows_the_teams_incidents_and_filters_by_state(api, incident, other_team, t0):
    theirs = CheckFactory(team=other_team)
    Incident.objects.create(owner=theirs, kind="hung", opened_at=t0)
    body = api.get("/api/tocsin/v1/incidents/").json()
    assert body["count"] == 1
    item = body["results"][0]
    assert (item["id"], item["check_id"], item["state"], item["kind"]) == (
        incident.id,
        str(incident.owner_id),
        "triggered",
        "failure_signal",
    )
    assert "timeline" not in item
    assert api.get("/api/tocsin/v1/incidents/?state=triggered").json()["count"] == 1
    assert api.get("/api/tocsin/v1/incidents/?state=resolved").json()["count"] == 0
    check_filter = f"/api/tocsin/v1/incidents/?check_id={incident.owner_id}"
    assert api.get(check_filter).json()["count"] == 1


@pytest.mark.parametrize("query", ["state=on-fire", "check_id=not-a-uuid"])
def test_list_refuses_bad_filters(api, incident, query):
    response = api.get(f"/api/tocsin/v1/incidents/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["fields"]


def test_read_has_the_timeline_and_details(api, incident):
    body = api.get(f"/api/tocsin/v1/incidents/{incident.id}/").json()
    kinds = [event["kind"] for event in body["timeline"]]
    # Opening fires the policy's first step, which the timeline records after "opened".
    assert kinds[0] == "opened"
    assert set(kinds) <= {"opened", "escalated", "notified"}
    assert body["details"]["body_tail"] == "disk full"


def test_acknowledge_then_resolve_through_the_dashboards_services(api, incident):
    response = api.post(f"/api/tocsin/v1/incidents/{incident.id}/acknowledge/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "acknowledged"
    assert body["acknowledged_by"].startswith("API key deploy (tk_")
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds[0] == "opened"
    assert kinds.count("acknowledged") == 1

    response = api.post(f"/api/tocsin/v1/incidents/{incident.id}/resolve/")
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["resolution"]) == ("resolved", "manual")
    assert body["resolved_by"].startswith("API key deploy")
    incident.refresh_from_db()
    assert incident.resolved_by is None  # no person did it; the timeline names the key
    assert IncidentEvent.objects.filter(incident=incident, kind="resolved").get().detail["by"]
    # The resolution is announced like any other (an outbox row per recipient).
    assert Notification.objects.filter(incident=incident, event="resolved").exists()


def test_acting_twice_is_409_with_the_reason(api, incident):
    api.post(f"/api/tocsin/v1/incidents/{incident.id}/acknowledge/")
    response = api.post(f"/api/tocsin/v1/incidents/{incident.id}/acknowledge/")
    assert response.status_code == 409
    assert response.json() == {
        "error": "This incident is already acknowledged.",
        "code": "conflict",
    }
    api.post(f"/api/tocsin/v1/incidents/{incident.id}/resolve/")
    response = api.post(f"/api/tocsin/v1/incidents/{incident.id}/resolve/")
    assert response.status_code == 409
    assert response.json()["error"] == "This incident is already resolved."


ENDPOINTS = [
    ("GET", "/api/tocsin/v1/incidents/{id}/"),
    ("POST", "/api/tocsin/v1/incidents/{id}/acknowledge/"),
    ("POST", "/api/tocsin/v1/incidents/{id}/resolve/"),
]


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_another_teams_key_gets_404(other_api, incident, method, path):
    assert other_api.call(method, path.format(id=incident.id)).status_code == 404
    incident.refresh_from_db()
    assert incident.state == "triggered"


@pytest.mark.parametrize("method, path", ENDPOINTS[1:])
def test_read_only_key_gets_403_on_actions(ro_api, incident, method, path):
    assert ro_api.call(method, path.format(id=incident.id)).status_code == 403
    incident.refresh_from_db()
    assert incident.state == "triggered"


def test_read_only_key_reads(ro_api, incident):
    assert ro_api.get("/api/tocsin/v1/incidents/").json()["count"] == 1
    assert ro_api.get(f"/api/tocsin/v1/incidents/{incident.id}/").status_code == 200


@pytest.mark.parametrize("method, path", [*ENDPOINTS, ("GET", "/api/tocsin/v1/incidents/")])
def test_no_key_gets_401(anon_api, incident, method, path):
    assert anon_api.call(method, path.format(id=incident.id)).status_code == 401


@pytest.mark.parametrize("incident_id", ["0", "99999999", "9" * 19, "-1", "abc"])
def test_unknown_or_malformed_ids_are_404(api, incident_id):
    assert api.get(f"/api/tocsin/v1/incidents/{incident_id}/").status_code == 404
