"""/api/tocsin/v1/checks/: every endpoint, its permissions and its bad input."""

import json
import uuid
from datetime import timedelta

import pytest

from apps.checks.models import Check, Flip, Run
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from tests.factories import CheckFactory

MIN, HOUR, DAY = 60, 3600, 86400


def test_list_is_paginated_and_only_the_keys_team(api, team, other_team):
    for n in range(3):
        CheckFactory(team=team, name=f"job-{n}")
    CheckFactory(team=other_team, name="theirs")
    body = api.get("/api/tocsin/v1/checks/?page_size=2").json()
    assert body["count"] == 3
    assert [c["name"] for c in body["results"]] == ["job-0", "job-1"]
    assert body["next"].endswith("page=2&page_size=2")
    second = api.get("/api/tocsin/v1/checks/?page=2&page_size=2").json()
    assert [c["name"] for c in second["results"]] == ["job-2"]


def test_list_filters_by_tag_status_and_environment(api, team):
    CheckFactory(team=team, name="a", tags="db nightly", environment="production")
    CheckFactory(team=team, name="b", tags="nightlyish", environment="staging")
    CheckFactory(team=team, name="c", tags="web db", environment="production", status="down")

    def names(query):
        response = api.get(f"/api/tocsin/v1/checks/?{query}")
        assert response.status_code == 200
        return [c["name"] for c in response.json()["results"]]

    assert names("tag=nightly") == ["a"]
    assert names("tag=db") == ["a", "c"]
    assert names("status=down") == ["c"]
    assert names("environment=staging") == ["b"]
    assert names("tag=db&environment=production&status=new") == ["a"]


@pytest.mark.parametrize(
    "query, field",
    [("status=sideways", "status"), ("tag=" + "x" * 51, "tag"), ("page_size=abc", None)],
    ids=["unknown-status", "long-tag", "bad-page-size"],
)
def test_list_refuses_bad_filters_with_field_details(api, team, query, field):
    response = api.get(f"/api/tocsin/v1/checks/?{query}")
    if field is None:  # DRF falls back to the default page size for a malformed page_size
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_create_with_only_a_name_takes_the_defaults(api, team, settings):
    response = api.post("/api/tocsin/v1/checks/", {"name": "Nightly backup"})
    assert response.status_code == 201, response.json()
    body = response.json()
    check = Check.objects.get(id=body["id"])
    assert check.team == team
    assert (check.slug, check.period, check.grace) == (
        "nightly-backup",
        timedelta(days=1),
        timedelta(hours=1),
    )
    assert body["period"] == DAY and body["grace"] == HOUR
    assert body["ping_url"] == f"https://tocsin.example/ping/{check.ping_token}"
    assert body["slug_ping_url"] == f"https://tocsin.example/ping/{team.ping_key}/nightly-backup"
    assert body["badge_url"].startswith("https://tocsin.example/badge/")
    assert body["badge_url"].endswith(".svg")
    assert body["status"] == "new"
    assert body["transient_exit_statuses"] == [75]


def test_create_with_every_setting(api):
    settings_in = {
        "name": "Reports",
        "slug": "reports",
        "tags": ["db", "nightly"],
        "description": "Monthly <b>reports</b>",
        "environment": "staging",
        "schedule_kind": "cron",
        "schedule_expression": "30 2 * * *",
        "timezone": "Europe/Riga",
        "period": DAY,
        "grace": 30 * MIN,
        "max_runtime": 2 * HOUR,
        "progress_timeout": 10 * MIN,
        "post_only": True,
        "success_keywords": "done",
        "failure_keywords": "ERROR\nFATAL",
        "email_filter_subject": True,
        "email_filter_body": False,
        "email_success_keywords": "Backup OK",
        "email_failure_keywords": "failed\nerror",
        "email_start_keywords": "started",
        "manual_resume": True,
        "failure_threshold": 2,
        "recovery_threshold": 3,
        "missed_tolerance": 2,
        "partial_max_failed": 10,
        "partial_max_ratio": 0.05,
        "transient_exit_statuses": [75, 69],
        "transient_limit": 4,
        "severity": "critical",
        "severity_raise_after": None,
        "severity_raise_to": "critical",
        "flap_threshold": 5,
        "flap_window": 2 * HOUR,
    }
    response = api.post("/api/tocsin/v1/checks/", settings_in)
    assert response.status_code == 201, response.json()
    body = response.json()
    expected = {**settings_in, "transient_exit_statuses": [69, 75]}
    assert {key: body[key] for key in settings_in} == expected
    check = Check.objects.get(slug="reports")
    assert check.max_runtime == timedelta(hours=2)
    assert check.schedule_expression == "30 2 * * *"


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({}, "name", "This field is required."),
        ({"name": "x", "period": 30}, "period", "Period must be at least 1 minute."),
        ({"name": "x", "period": 0}, "period", "Period must be at least 1 minute."),
        ({"name": "x", "period": -60}, "period", "Period must be at least 1 minute."),
        ({"name": "x", "grace": 0}, "grace", "Grace must be at least 1 second."),
        ({"name": "x", "max_runtime": 0}, "max_runtime", "at least 1 second."),
        ({"name": "x", "progress_timeout": -5}, "progress_timeout", "at least 1 second."),
        ({"name": "x", "grace": 400 * DAY}, "grace", "Grace must be at most 365 days."),
        (
            {"name": "x", "schedule_kind": "cron", "schedule_expression": "61 * * * *"},
            "schedule_expression",
            "",
        ),
        (
            {
                "name": "x",
                "schedule_kind": "cron",
                "schedule_expression": "0 3 * * *",
                "timezone": "Mars/Olympus",
            },
            "timezone",
            "",
        ),
        ({"name": "x", "failure_threshold": 0}, "failure_threshold", "from 1 to 100"),
        ({"name": "x", "partial_max_ratio": 1.5}, "partial_max_ratio", "from 0 to 1"),
        ({"name": "x", "transient_exit_statuses": [300]}, "transient_exit_statuses", "1 to 255"),
        ({"name": "x", "tags": ["a b"]}, "tags", "no spaces"),
        ({"name": "x", "slug": "not a slug!"}, "slug", ""),
        ({"name": "x", "severity": "apocalyptic"}, "severity", "not a valid choice"),
        ({"name": 5}, "name", "Must be a string."),
        ({"name": "x", "period": "3600"}, "period", "Must be a whole number."),
        ({"name": "x", "period": 3600.5}, "period", "Must be a whole number."),
        ({"name": "x", "post_only": "yes"}, "post_only", "Must be true or false."),
        ({"name": "x", "tags": "db nightly"}, "tags", ""),
        ({"name": "x", "period": 10**30}, "period", ""),
        ({"name": "x", "colour": "red"}, "colour", "Unknown field."),
        ({"name": "x" * 101}, "name", "no more than 100 characters"),
        ({"name": "nul\x00byte"}, "name", "Null characters are not allowed."),
        ({"name": "x", "email_filter_body": "on"}, "email_filter_body", "true or false"),
        ({"name": "x", "email_start_keywords": "k" * 2001}, "email_start_keywords", "2000"),
        ({"name": "x", "email_failure_keywords": "a\x00b"}, "email_failure_keywords", "Null"),
        ({"name": "lone \ud800 surrogate"}, "name", "valid Unicode"),
    ],
    ids=[
        "missing-name",
        "period-30-seconds",
        "period-zero",
        "period-negative",
        "grace-zero",
        "max-runtime-zero",
        "progress-timeout-negative",
        "grace-too-long",
        "bad-cron",
        "bad-timezone",
        "threshold-zero",
        "ratio-over-one",
        "exit-status-300",
        "tag-with-space",
        "bad-slug",
        "unknown-severity",
        "name-number",
        "period-string",
        "period-float",
        "bool-string",
        "tags-string",
        "huge-number",
        "unknown-field",
        "long-name",
        "nul",
        "email-filter-string",
        "email-keywords-too-long",
        "email-keywords-nul",
        "surrogate",
    ],
)
def test_create_refuses_bad_settings_with_the_forms_messages(api, body, field, message):
    response = api.post("/api/tocsin/v1/checks/", body)
    assert response.status_code == 400, response.json()
    error = response.json()
    assert error["code"] == "invalid"
    assert error["error"] == "Invalid input."
    assert field in error["fields"], error
    assert message in " ".join(error["fields"][field])
    assert not Check.objects.exists()


def test_create_accepts_a_blank_name_as_healthchecks_does(api):
    response = api.post("/api/tocsin/v1/checks/", {"name": "   "})
    assert response.status_code == 201
    assert (response.json()["name"], response.json()["slug"]) == ("", "")


def test_create_accepts_a_slug_the_team_already_uses(api, check):
    response = api.post("/api/tocsin/v1/checks/", {"name": "again", "slug": check.slug})
    assert response.status_code == 201
    assert Check.objects.filter(slug=check.slug).count() == 2


@pytest.mark.parametrize(
    "raw, content_type, status",
    [
        (b'{"name": ', "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b'"just a string"', "application/json", 400),
        (b"name=x", "application/x-www-form-urlencoded", 415),
        (b'{"name": NaN}', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
    ],
    ids=["truncated", "array", "string", "form-encoded", "nan", "binary"],
)
def test_malformed_bodies_are_refused_cleanly(api, raw, content_type, status):
    response = api.client.post(
        "/api/tocsin/v1/checks/", data=raw, content_type=content_type, headers=api.headers
    )
    assert response.status_code == status
    assert response.json()["error"]
    assert not Check.objects.exists()


def test_oversized_body_is_413(api, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = api.post("/api/tocsin/v1/checks/", {"name": "x", "description": "y" * 2000})
    assert response.status_code == 413
    assert response.json() == {
        "error": "The request body must be at most 1000 bytes.",
        "code": "too_large",
    }


def test_hostile_text_is_stored_and_returned_verbatim(api):
    hostile = "<script>alert(1)</script> '; DROP TABLE checks; -- \u202e\U0001f525"
    response = api.post("/api/tocsin/v1/checks/", {"name": "x", "description": hostile})
    assert response.status_code == 201
    assert (
        api.get(f"/api/tocsin/v1/checks/{response.json()['id']}/").json()["description"] == hostile
    )


def test_read(api, check):
    body = api.get(f"/api/tocsin/v1/checks/{check.id}/").json()
    assert body["id"] == str(check.id)
    assert body["tags"] == ["backup", "nightly"]


def test_patch_changes_only_what_it_names_and_keeps_the_rest(api, check):
    response = api.patch(f"/api/tocsin/v1/checks/{check.id}/", {"grace": 2 * HOUR, "tags": ["db"]})
    assert response.status_code == 200, response.json()
    check.refresh_from_db()
    assert check.grace == timedelta(hours=2)
    assert check.tags == "db"
    assert check.name == "nightly-backup"
    assert check.environment == "production"


def test_patch_refuses_bad_values_and_changes_nothing(api, check):
    response = api.patch(f"/api/tocsin/v1/checks/{check.id}/", {"grace": 0, "name": "renamed"})
    assert response.status_code == 400
    check.refresh_from_db()
    assert (check.name, check.grace) == ("nightly-backup", timedelta(hours=1))


def test_put_replaces_settings_but_keeps_the_slug(api, check):
    response = api.put(f"/api/tocsin/v1/checks/{check.id}/", {"name": "Renamed"})
    assert response.status_code == 200, response.json()
    check.refresh_from_db()
    assert check.name == "Renamed"
    assert check.slug == "nightly-backup"
    assert check.tags == "" and check.environment == ""


def test_update_makes_a_watched_check_due_so_the_new_schedule_applies(api, check):
    now = database_now()
    record_ping(ping=PingData(kind="success", method="POST"), token=check.ping_token, now=now)
    sweep_due_checks(now=now + timedelta(minutes=1))
    check.refresh_from_db()
    assert check.alert_after > now + timedelta(hours=23)
    api.patch(f"/api/tocsin/v1/checks/{check.id}/", {"period": HOUR})
    check.refresh_from_db()
    assert check.alert_after < database_now() + timedelta(seconds=1)


def test_delete(api, check):
    response = api.delete(f"/api/tocsin/v1/checks/{check.id}/")
    assert response.status_code == 204
    assert not Check.objects.exists()


def test_pause_and_resume(api, check):
    response = api.post(f"/api/tocsin/v1/checks/{check.id}/pause/")
    assert response.status_code == 200
    assert response.json()["status"] == "paused"
    assert api.post(f"/api/tocsin/v1/checks/{check.id}/pause/").json()["status"] == "paused"
    response = api.post(f"/api/tocsin/v1/checks/{check.id}/resume/")
    assert response.status_code == 200
    assert response.json()["status"] == "new"
    # Resuming a check that is not paused changes nothing.
    assert api.post(f"/api/tocsin/v1/checks/{check.id}/resume/").json()["status"] == "new"


def test_pings_runs_and_flips_newest_first(api, check, t0):
    rid = uuid.uuid4()
    for n, (kind, at) in enumerate([("start", 0), ("success", 90)]):
        record_ping(
            ping=PingData(kind=kind, method="POST", run_id=rid, body=f"body {n}".encode()),
            token=check.ping_token,
            now=t0 + timedelta(seconds=at),
        )
    sweep_due_checks(now=t0 + timedelta(minutes=5))
    pings = api.get(f"/api/tocsin/v1/checks/{check.id}/pings/").json()
    assert pings["count"] == 2
    assert [(p["n"], p["kind"], p["body"]) for p in pings["results"]] == [
        (2, "success", "body 1"),
        (1, "start", "body 0"),
    ]
    assert pings["results"][0]["run_id"] == str(rid)
    runs = api.get(f"/api/tocsin/v1/checks/{check.id}/runs/").json()["results"]
    assert [(r["outcome"], r["duration"]) for r in runs] == [("succeeded", 90.0)]
    assert Run.objects.count() == 1
    flips = api.get(f"/api/tocsin/v1/checks/{check.id}/flips/").json()["results"]
    assert [(f["from_status"], f["to_status"]) for f in flips] == [("new", "up")]
    assert Flip.objects.count() == 1


def test_upsert_by_slug_creates_then_updates_idempotently(api, team):
    body = {"name": "Backup", "period": HOUR, "tags": ["db"]}
    first = api.put("/api/tocsin/v1/checks/by-slug/backup/", body)
    assert first.status_code == 201, first.json()
    again = api.put("/api/tocsin/v1/checks/by-slug/backup/", body)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Check.objects.count() == 1
    changed = api.put(
        "/api/tocsin/v1/checks/by-slug/backup/", {"name": "Backup", "period": 2 * HOUR}
    )
    assert changed.status_code == 200
    check = Check.objects.get()
    assert (check.slug, check.period, check.tags) == ("backup", timedelta(hours=2), "")
    assert api.get("/api/tocsin/v1/checks/by-slug/backup/").json()["id"] == str(check.id)


def test_upsert_by_slug_refuses_a_slug_in_the_body_and_bad_settings(api):
    response = api.put("/api/tocsin/v1/checks/by-slug/backup/", {"name": "x", "slug": "other"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"slug": ["Unknown field."]}
    response = api.put("/api/tocsin/v1/checks/by-slug/backup/", {"name": "x", "period": 1})
    assert response.status_code == 400
    assert not Check.objects.exists()


def test_malformed_ids_and_slugs_are_404(api):
    assert api.get("/api/tocsin/v1/checks/not-a-uuid/").status_code == 404
    assert api.get(f"/api/tocsin/v1/checks/{uuid.uuid4()}/").status_code == 404
    assert api.put("/api/tocsin/v1/checks/by-slug/bad%20slug/", {"name": "x"}).status_code == 404
    assert api.get("/api/tocsin/v1/no-such-thing/").json()["code"] == "not_found"


CHECK_ENDPOINTS = [
    ("GET", "/api/tocsin/v1/checks/{id}/", None),
    ("PUT", "/api/tocsin/v1/checks/{id}/", {"name": "stolen"}),
    ("PATCH", "/api/tocsin/v1/checks/{id}/", {"name": "stolen"}),
    ("DELETE", "/api/tocsin/v1/checks/{id}/", None),
    ("POST", "/api/tocsin/v1/checks/{id}/pause/", None),
    ("POST", "/api/tocsin/v1/checks/{id}/resume/", None),
    ("GET", "/api/tocsin/v1/checks/{id}/pings/", None),
    ("GET", "/api/tocsin/v1/checks/{id}/runs/", None),
    ("GET", "/api/tocsin/v1/checks/{id}/flips/", None),
    ("GET", "/api/tocsin/v1/checks/by-slug/{slug}/", None),
    ("PUT", "/api/tocsin/v1/checks/by-slug/{slug}/", {"name": "stolen"}),
]
WRITES = [e for e in CHECK_ENDPOINTS if e[0] != "GET"] + [("POST", "/api/tocsin/v1/checks/", {})]


@pytest.mark.parametrize("method, path, body", CHECK_ENDPOINTS, ids=lambda v: str(v))
def test_another_teams_key_gets_404_and_changes_nothing(other_api, check, method, path, body):
    before = Check.objects.values().get()
    response = other_api.call(method, path.format(id=check.id, slug=check.slug), body)
    if method == "PUT" and "by-slug" in path:
        # Their upsert creates a check of their own; ours is untouched.
        assert response.status_code == 201
        assert Check.objects.filter(team=check.team).count() == 1
    else:
        assert response.status_code == 404
    assert Check.objects.filter(id=check.id).values().get() == before


@pytest.mark.parametrize("method, path, body", WRITES, ids=lambda v: str(v))
def test_read_only_key_gets_403_on_every_write(ro_api, check, method, path, body):
    before = Check.objects.values().get()
    response = ro_api.call(method, path.format(id=check.id, slug=check.slug), body)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert Check.objects.values().get() == before


@pytest.mark.parametrize(
    "method, path, body", [*CHECK_ENDPOINTS, ("GET", "/api/tocsin/v1/checks/", None)], ids=str
)
def test_no_key_gets_401(anon_api, check, method, path, body):
    response = anon_api.call(method, path.format(id=check.id, slug=check.slug), body)
    assert response.status_code == 401


READS = [path for method, path, _ in CHECK_ENDPOINTS if method == "GET"]


@pytest.mark.parametrize("path", READS)
def test_read_only_key_reads(ro_api, check, path):
    assert ro_api.get(path.format(id=check.id, slug=check.slug)).status_code == 200


def test_durations_take_whole_seconds_for_short_jobs(api):
    body = {"name": "Short job", "period": 90, "grace": 15, "max_runtime": 20}
    body["progress_timeout"] = 7
    response = api.post("/api/tocsin/v1/checks/", body)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert {key: created[key] for key in body} == body
    check = Check.objects.get()
    assert (check.period, check.grace, check.max_runtime, check.progress_timeout) == (
        timedelta(seconds=90),
        timedelta(seconds=15),
        timedelta(seconds=20),
        timedelta(seconds=7),
    )
    response = api.patch(f"/api/tocsin/v1/checks/{check.id}/", {"max_runtime": 3601})
    assert response.status_code == 200, response.json()
    check.refresh_from_db()
    assert check.max_runtime == timedelta(seconds=3601)


def test_read_only_key_gets_no_ping_urls(ro_api, api, check):
    # A ping URL would let a dashboard's key report the job as fine.
    for path in (f"/api/tocsin/v1/checks/{check.id}/", "/api/tocsin/v1/checks/"):
        body = ro_api.get(path).json()
        item = body["results"][0] if "results" in body else body
        assert (item["ping_url"], item["slug_ping_url"]) == (None, None)
        assert str(check.ping_token) not in json.dumps(body)
        assert check.team.ping_key not in json.dumps(body)
    assert (
        api.get(f"/api/tocsin/v1/checks/{check.id}/")
        .json()["ping_url"]
        .endswith(str(check.ping_token))
    )
