"""/api/v1/silences/ and /api/v1/maintenance-windows/: list, create, expire, delete; the
dashboard forms' rules, permissions and bad input."""

from datetime import timedelta

import pytest

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from apps.escalation.models import MaintenanceWindow, Silence
from apps.incidents.models import Incident
from tests.factories import CheckFactory

HOUR = 3600


def make_silence(team, *, starts_in=timedelta(0), lasts=timedelta(hours=1), **fields):
    now = database_now()
    return Silence.objects.create(
        team=team,
        starts_at=now + starts_in,
        ends_at=now + starts_in + lasts,
        matchers=fields.pop("matchers", {"whole_team": True}),
        comment=fields.pop("comment", "deploy"),
        created_at=now,
        **fields,
    )


def ids(response):
    assert response.status_code == 200, response.json()
    return [item["id"] for item in response.json()["results"]]


def test_list_shows_active_and_upcoming_of_the_keys_team_by_default(api, team, other_team):
    active = make_silence(team, starts_in=timedelta(minutes=-5))
    upcoming = make_silence(team, starts_in=timedelta(hours=2))
    ended = make_silence(team, starts_in=timedelta(hours=-3))
    expired = make_silence(team, starts_in=timedelta(minutes=-5), expired_at=database_now())
    make_silence(other_team, starts_in=timedelta(minutes=-5))

    assert ids(api.get("/api/v1/silences/")) == [active.id, upcoming.id]
    assert ids(api.get("/api/v1/silences/?state=active")) == [active.id]
    assert ids(api.get("/api/v1/silences/?state=upcoming")) == [upcoming.id]
    assert set(ids(api.get("/api/v1/silences/?state=ended"))) == {ended.id, expired.id}
    states = {item["id"]: item["state"] for item in api.get("/api/v1/silences/").json()["results"]}
    assert states == {active.id: "active", upcoming.id: "upcoming"}


def test_list_filters_by_the_check_a_silence_covers(api, team):
    db = CheckFactory(team=team, tags="db", environment="production")
    CheckFactory(team=team, tags="web")
    by_tag = make_silence(team, matchers={"tags": ["db"]})
    make_silence(team, matchers={"tags": ["web"]})
    whole = make_silence(team, matchers={"whole_team": True})
    assert ids(api.get(f"/api/v1/silences/?check_id={db.id}")) == [by_tag.id, whole.id]


@pytest.mark.parametrize("query", ["state=sideways", "check_id=nope", "state=" + "a" * 5000])
def test_list_refuses_bad_filters(api, team, query):
    response = api.get(f"/api/v1/silences/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["fields"]


def test_create_with_a_duration_starts_now_and_is_paginated_in_the_list(api, team, check):
    response = api.post(
        "/api/v1/silences/",
        {"duration": 2 * HOUR, "matchers": {"check_ids": [str(check.id)]}, "comment": "restore"},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    silence = Silence.objects.get(id=body["id"])
    assert silence.team == team and silence.created_by is None
    assert silence.ends_at - silence.starts_at == timedelta(hours=2)
    assert silence.matchers["check_ids"] == [str(check.id)]
    assert body["state"] == "active" and body["created_by"] is None
    assert body["matchers"] == {
        "check_ids": [str(check.id)],
        "tags": [],
        "environment": "",
        "whole_team": False,
    }
    assert api.get("/api/v1/silences/?page_size=1").json()["count"] == 1


def test_create_holds_an_open_incident_of_a_covered_check_at_once(api, check, t0):
    now = database_now()
    record_ping(ping=PingData(kind="fail", method="POST"), token=check.ping_token, now=now)
    sweep_due_checks(now=now + timedelta(seconds=1))
    incident = Incident.objects.get(owner=check)
    response = api.post(
        "/api/v1/silences/",
        {"duration": HOUR, "matchers": {"tags": [], "whole_team": True}, "comment": "known"},
    )
    assert response.status_code == 201, response.json()
    incident.refresh_from_db()
    assert incident.hold == Incident.Hold.SILENCED


def test_a_silence_matching_no_check_is_refused_unless_confirmed(api, team):
    CheckFactory(team=team, tags="backup", environment="production")
    body = {"duration": HOUR, "matchers": {"tags": ["backup"], "environment": "staging"}}
    response = api.post("/api/v1/silences/", body | {"comment": "x"})
    assert response.status_code == 400
    (message,) = response.json()["fields"]["confirm_no_match"]
    assert "match no check" in message
    assert not Silence.objects.exists()

    response = api.post("/api/v1/silences/", body | {"comment": "x", "confirm_no_match": True})
    assert response.status_code == 201, response.json()
    response = api.post("/api/v1/silences/", body | {"comment": "x", "confirm_no_match": "yes"})
    assert response.status_code == 400  # strictly a boolean


def test_create_an_upcoming_silence_with_start_and_end(api, team):
    CheckFactory(team=team, environment="staging")
    start = database_now() + timedelta(days=1)
    response = api.post(
        "/api/v1/silences/",
        {
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=3)).isoformat(),
            "matchers": {"environment": "staging"},
            "comment": "load test",
        },
    )
    assert response.status_code == 201, response.json()
    assert response.json()["state"] == "upcoming"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"duration": HOUR, "matchers": {"whole_team": True}}, "comment"),
        ({"duration": HOUR, "matchers": {"whole_team": True}, "comment": "   "}, "comment"),
        ({"duration": HOUR, "matchers": {}, "comment": "x"}, "non_field_errors"),
        ({"matchers": {"whole_team": True}, "comment": "x"}, "ends_at"),
        ({"duration": 91 * 86400, "matchers": {"whole_team": True}, "comment": "x"}, "duration"),
        ({"duration": 90, "matchers": {"whole_team": True}, "comment": "x"}, "duration"),
        ({"duration": "1h", "matchers": {"whole_team": True}, "comment": "x"}, "duration"),
        ({"duration": HOUR, "matchers": {"tags": ["a b"]}, "comment": "x"}, "matchers"),
        ({"duration": HOUR, "matchers": {"whole_team": "yes"}, "comment": "x"}, "matchers"),
        ({"duration": HOUR, "matchers": ["everything"], "comment": "x"}, "matchers"),
        ({"duration": HOUR, "matchers": {"teams": True}, "comment": "x"}, "matchers"),
        ({"duration": HOUR, "matchers": {"whole_team": True}, "comment": 5}, "comment"),
        ({"duration": HOUR, "matchers": {"whole_team": True}, "comment": "x" * 1001}, "comment"),
        ({"duration": HOUR, "matchers": {"whole_team": True}, "comment": "\ud800"}, "comment"),
        ({"duration": HOUR, "matchers": {"whole_team": True}, "comment": "x", "by": 1}, "by"),
        (
            {"ends_at": "2020-01-01T00:00:00Z", "matchers": {"whole_team": True}, "comment": "x"},
            "ends_at",
        ),
        (
            {"ends_at": "9999-12-31T23:59:59Z", "matchers": {"whole_team": True}, "comment": "x"},
            "ends_at",
        ),
        ({"ends_at": 12, "matchers": {"whole_team": True}, "comment": "x"}, "ends_at"),
        (
            {
                "ends_at": "2099-01-01T00:00:00Z",
                "duration": HOUR,
                "matchers": {"whole_team": True},
                "comment": "x",
            },
            "duration",
        ),
        (
            {
                "starts_at": "2099-01-01T00:00:00Z",
                "ends_at": "2098-01-01T00:00:00Z",
                "matchers": {"whole_team": True},
                "comment": "x",
            },
            "ends_at",
        ),
    ],
    ids=[
        "no-comment",
        "blank-comment",
        "no-matchers",
        "no-end",
        "longer-than-90-days",
        "not-whole-minutes",
        "duration-as-text",
        "tag-with-space",
        "boolean-as-text",
        "matchers-not-an-object",
        "unknown-matcher",
        "comment-not-text",
        "comment-too-long",
        "lone-surrogate",
        "unknown-field",
        "end-in-the-past",
        "end-out-of-range",
        "end-a-number",
        "end-and-duration",
        "end-before-start",
    ],
)
def test_create_refuses_bad_input_with_field_details(api, team, body, field):
    response = api.post("/api/v1/silences/", body)
    assert response.status_code == 400, response.json()
    error = response.json()
    assert error["code"] == "invalid"
    assert any(key.split(".")[0] == field for key in error["fields"]), error
    assert not Silence.objects.exists()


def test_create_refuses_another_teams_check(api, other_team):
    theirs = CheckFactory(team=other_team)
    response = api.post(
        "/api/v1/silences/",
        {"duration": HOUR, "matchers": {"check_ids": [str(theirs.id)]}, "comment": "x"},
    )
    assert response.status_code == 400
    assert "matchers.check_ids" in response.json()["fields"]


@pytest.mark.parametrize(
    "raw", [b"{", b"[]", b'"text"', b"null"], ids=["malformed", "list", "string", "null"]
)
def test_create_refuses_bodies_that_are_not_an_object(api, team, raw):
    response = api.call("POST", "/api/v1/silences/", raw=raw)
    assert response.status_code == 400
    assert response.json()["code"] in ("parse_error", "invalid")


def test_create_refuses_an_oversized_body(api, team, settings):
    body = {"duration": HOUR, "matchers": {"whole_team": True}, "comment": "x" * 70_000}
    response = api.post("/api/v1/silences/", body)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_expire_ends_it_now_and_a_second_time_is_a_conflict(api, team):
    silence = make_silence(team, starts_in=timedelta(minutes=-5))
    response = api.post(f"/api/v1/silences/{silence.id}/expire/")
    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "ended"
    silence.refresh_from_db()
    assert silence.expired_at is not None
    again = api.post(f"/api/v1/silences/{silence.id}/expire/")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


def test_read_only_key_reads_but_cannot_create_or_expire(ro_api, team):
    silence = make_silence(team)
    assert ro_api.get(f"/api/v1/silences/{silence.id}/").status_code == 200
    body = {"duration": HOUR, "matchers": {"whole_team": True}, "comment": "x"}
    assert ro_api.post("/api/v1/silences/", body).status_code == 403
    assert ro_api.post(f"/api/v1/silences/{silence.id}/expire/").status_code == 403
    silence.refresh_from_db()
    assert silence.expired_at is None and Silence.objects.count() == 1


def test_other_teams_key_gets_404_and_no_key_401(other_api, anon_api, team):
    silence = make_silence(team)
    assert other_api.get(f"/api/v1/silences/{silence.id}/").status_code == 404
    assert other_api.post(f"/api/v1/silences/{silence.id}/expire/").status_code == 404
    assert other_api.get("/api/v1/silences/").json()["count"] == 0
    assert anon_api.get("/api/v1/silences/").status_code == 401
    assert anon_api.post(f"/api/v1/silences/{silence.id}/expire/").status_code == 401
    silence.refresh_from_db()
    assert silence.expired_at is None


# --- maintenance windows ---------------------------------------------------------------------


WINDOW = {
    "name": "Sunday patching",
    "cron": "0 2 * * 0",
    "timezone": "Europe/Riga",
    "duration": 2 * HOUR,
    "matchers": {"tags": ["db"]},
    "comment": "OS updates",
}


def test_create_read_list_and_delete_a_maintenance_window(api, team):
    response = api.post("/api/v1/maintenance-windows/", WINDOW)
    assert response.status_code == 201, response.json()
    body = response.json()
    window = MaintenanceWindow.objects.get(id=body["id"])
    assert (window.team, window.cron, window.duration) == (team, "0 2 * * 0", timedelta(hours=2))
    assert body["duration"] == 2 * HOUR and body["matchers"]["tags"] == ["db"]
    assert body["next_opens_at"]
    listed = api.get("/api/v1/maintenance-windows/").json()
    assert [w["name"] for w in listed["results"]] == ["Sunday patching"]
    assert api.delete(f"/api/v1/maintenance-windows/{window.id}/").status_code == 204
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"cron": "every sunday"}, "cron"),
        ({"cron": "0 25 * * *"}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"duration": 8 * 86400}, "duration"),
        ({"duration": 0}, "duration"),
        ({"name": "  "}, "name"),
        ({"comment": ""}, "comment"),
        ({"matchers": {}}, "non_field_errors"),
        ({"cron": "0 2 * * 0\n0 3 * * *"}, "cron"),
    ],
    ids=[
        "words",
        "hour-25",
        "timezone",
        "over-7-days",
        "zero",
        "blank-name",
        "no-comment",
        "no-matchers",
        "two-lines",
    ],
)
def test_maintenance_window_refuses_what_the_form_refuses(api, team, change, field):
    response = api.post("/api/v1/maintenance-windows/", {**WINDOW, **change})
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not MaintenanceWindow.objects.exists()


def test_maintenance_window_permissions(api, ro_api, other_api, anon_api, team):
    window_id = api.post("/api/v1/maintenance-windows/", WINDOW).json()["id"]
    assert ro_api.get(f"/api/v1/maintenance-windows/{window_id}/").status_code == 200
    assert ro_api.post("/api/v1/maintenance-windows/", WINDOW).status_code == 403
    assert ro_api.delete(f"/api/v1/maintenance-windows/{window_id}/").status_code == 403
    assert other_api.get(f"/api/v1/maintenance-windows/{window_id}/").status_code == 404
    assert other_api.delete(f"/api/v1/maintenance-windows/{window_id}/").status_code == 404
    assert anon_api.get("/api/v1/maintenance-windows/").status_code == 401
    assert MaintenanceWindow.objects.count() == 1
