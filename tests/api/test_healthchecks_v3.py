"""/api/v3/: requests shaped as the Healthchecks Management API documents them (curl with
--data and an X-Api-Key header, paths without a trailing slash), answers in its field names."""

import hashlib
import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client

from apps.checks.models import Check
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from tests.factories import CheckFactory


class Curl:
    """What `curl --header "X-Api-Key: ..." [--data '{...}'] URL` sends: a form content type
    around a JSON body."""

    def __init__(self, key):
        self.client = Client()
        self.headers = {"X-Api-Key": key} if key else {}

    def __call__(self, method, path, data=None):
        kwargs = {"headers": self.headers}
        if data is not None:
            kwargs["data"] = json.dumps(data) if not isinstance(data, bytes) else data
            kwargs["content_type"] = "application/x-www-form-urlencoded"
        return getattr(self.client, method.lower())(path, **kwargs)


@pytest.fixture
def curl(rw_key):
    return Curl(rw_key)


@pytest.fixture
def ro_curl(ro_key):
    return Curl(ro_key)


def test_create_as_documented(curl, team):
    response = curl(
        "POST",
        "/api/v3/checks/",
        {"name": "Backups", "tags": "prod www", "timeout": 3600, "grace": 60},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    check = Check.objects.get()
    assert (check.name, check.tags, check.period, check.grace) == (
        "Backups",
        "prod www",
        timedelta(hours=1),
        timedelta(minutes=1),
    )
    assert body["uuid"] == str(check.id)
    assert body["ping_url"] == f"https://tocsin.example/ping/{check.ping_token}"
    assert body["update_url"] == f"https://tocsin.example/api/v3/checks/{check.id}"
    assert body["pause_url"] == body["update_url"] + "/pause"
    assert body["resume_url"] == body["update_url"] + "/resume"
    assert (body["name"], body["tags"], body["timeout"], body["grace"]) == (
        "Backups",
        "prod www",
        3600,
        60,
    )
    assert (body["status"], body["n_pings"], body["last_ping"], body["next_ping"]) == (
        "new",
        0,
        None,
        None,
    )
    assert body["desc"] == "" and body["methods"] == "" and body["manual_resume"] is False
    assert "schedule" not in body


def test_create_a_cron_check_with_schedule_and_tz(curl):
    response = curl(
        "POST",
        "/api/v3/checks/",
        {"name": "Nightly", "schedule": "15 5 * * *", "tz": "Europe/Riga", "grace": 600},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["schedule"], body["tz"]) == ("15 5 * * *", "Europe/Riga")
    assert "timeout" not in body
    check = Check.objects.get()
    assert (check.schedule_kind, check.schedule_expression) == ("cron", "15 5 * * *")


def test_an_oncalendar_schedule_is_recognised(curl):
    response = curl("POST", "/api/v3/checks/", {"name": "x", "schedule": "Mon..Fri 03:00"})
    assert response.status_code == 201, response.json()
    assert Check.objects.get().schedule_kind == "oncalendar"


def test_create_with_unique_returns_and_updates_the_existing_check(curl):
    first = curl("POST", "/api/v3/checks/", {"name": "Backups", "unique": ["name"]})
    assert first.status_code == 201
    again = curl(
        "POST", "/api/v3/checks/", {"name": "Backups", "timeout": 7200, "unique": ["name"]}
    )
    assert again.status_code == 200
    assert again.json()["uuid"] == first.json()["uuid"]
    assert again.json()["timeout"] == 7200
    assert Check.objects.count() == 1


def test_timeout_and_grace_take_any_whole_number_of_seconds(curl):
    response = curl("POST", "/api/v3/checks/", {"name": "x", "timeout": 90, "grace": 75})
    assert response.status_code == 201, response.json()
    assert (response.json()["timeout"], response.json()["grace"]) == (90, 75)
    check = Check.objects.get()
    assert (check.period, check.grace) == (timedelta(seconds=90), timedelta(seconds=75))
    code = response.json()["uuid"]
    response = curl("POST", f"/api/v3/checks/{code}", {"timeout": 31536000, "grace": 61})
    assert response.status_code == 200, response.json()
    assert (response.json()["timeout"], response.json()["grace"]) == (31536000, 61)


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"timeout": 59}, "timeout", "timeout is too small: at least 60 seconds."),
        ({"timeout": 31536001}, "timeout", "timeout is too large: at most 31536000 seconds."),
        ({"grace": 30}, "grace", "grace is too small: at least 60 seconds."),
        ({"grace": -60}, "grace", "grace is too small: at least 60 seconds."),
        ({"grace": 10**12}, "grace", "grace is too large: at most 31536000 seconds."),
        ({"timeout": 90.5}, "timeout", "Must be a whole number."),
        ({"timeout": "90"}, "timeout", "Must be a whole number."),
    ],
    ids=[
        "timeout-59",
        "timeout-too-long",
        "grace-30",
        "grace-negative",
        "grace-huge",
        "float",
        "str",
    ],
)
def test_timeout_and_grace_outside_healthchecks_range_are_400(curl, body, field, message):
    response = curl("POST", "/api/v3/checks/", {"name": "x", **body})
    assert response.status_code == 400
    assert response.json()["fields"][field] == [message]
    assert not Check.objects.exists()


def test_create_refuses_bad_input_in_healthchecks_error_shape(curl):
    response = curl("POST", "/api/v3/checks/", {"name": "x", "schedule": "61 * * * *"})
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid input."
    assert "schedule_expression" in response.json()["fields"]
    response = curl("POST", "/api/v3/checks/", b"{not json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["error"]
    response = curl("POST", "/api/v3/checks/", {"unique": ["colour"]})
    assert response.status_code == 400
    assert not Check.objects.exists()


def test_list_with_tag_and_slug_filters(curl, team):
    CheckFactory(team=team, name="a", slug="a", tags="prod www")
    CheckFactory(team=team, name="b", slug="b", tags="prod db")
    names = lambda path: [c["name"] for c in curl("GET", path).json()["checks"]]  # noqa: E731
    assert names("/api/v3/checks/") == ["a", "b"]
    assert names("/api/v3/checks/?tag=prod") == ["a", "b"]
    assert names("/api/v3/checks/?tag=prod&tag=db") == ["b"]
    assert names("/api/v3/checks/?slug=a") == ["a"]


def test_read_only_keys_see_unique_key_instead_of_uuid_and_urls(ro_curl, check):
    body = ro_curl("GET", "/api/v3/checks/").json()["checks"][0]
    expected = hashlib.sha1(check.id.hex.encode(), usedforsecurity=False).hexdigest()
    assert body["unique_key"] == expected
    for secret in ("uuid", "ping_url", "update_url", "pause_url", "resume_url"):
        assert secret not in body
    # The badge is public by design: it shows a name and a status, and it works.
    badge = ro_curl.client.get(body["badge_url"].removeprefix("https://tocsin.example"))
    assert badge.status_code == 200 and badge["Content-Type"] == "image/svg+xml"
    assert ro_curl("GET", f"/api/v3/checks/{expected}").json()["name"] == check.name


def test_read_update_pause_resume_delete(curl, check):
    path = f"/api/v3/checks/{check.id}"
    assert curl("GET", path).json()["uuid"] == str(check.id)

    response = curl("POST", path, {"desc": "Nightly dump", "methods": "POST"})
    assert response.status_code == 200
    check.refresh_from_db()
    assert (check.description, check.post_only, check.name) == (
        "Nightly dump",
        True,
        "nightly-backup",
    )

    assert curl("POST", f"{path}/resume").status_code == 409
    assert curl("POST", f"{path}/pause").json()["status"] == "paused"
    assert curl("POST", f"{path}/resume").json()["status"] == "new"

    response = curl("DELETE", path)
    assert response.status_code == 200
    assert response.json()["name"] == "nightly-backup"
    assert not Check.objects.exists()


def test_pause_and_resume_as_the_docs_send_them_with_an_empty_form_body(curl, check):
    # curl .../pause --request POST --header "X-Api-Key: ..." --data ""
    path = f"/api/v3/checks/{check.id}"
    response = curl("POST", f"{path}/pause", b"")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "paused"
    response = curl("POST", f"{path}/resume", b"")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "new"


def test_create_with_the_documented_extras(curl):
    # "channels": "*" assigns every integration in Healthchecks; Tocsin notifies through
    # escalation policies and accepts it without effect. "unique" upserts.
    body = {
        "name": "Backups",
        "tags": "prod www",
        "timeout": 3600,
        "grace": 60,
        "channels": "*",
        "unique": ["name", "tags"],
        "manual_resume": True,
        "success_kw": "SUCCESS, COMPLETED",
        "failure_kw": "ERROR",
        "filter_body": True,
    }
    first = curl("POST", "/api/v3/checks/", body)
    assert first.status_code == 201, first.json()
    again = curl("POST", "/api/v3/checks/", {**body, "desc": "second run"})
    assert again.status_code == 200
    assert again.json()["uuid"] == first.json()["uuid"] and again.json()["desc"] == "second run"
    check = Check.objects.get()
    assert check.manual_resume is True
    assert check.success_keywords.splitlines() == ["SUCCESS", "COMPLETED"]
    assert first.json()["success_kw"] == "SUCCESS,COMPLETED"
    assert first.json()["channels"] == ""


def test_pings_and_flips(curl, check, t0):
    rid = uuid.uuid4()
    record_ping(
        ping=PingData(kind="start", method="GET", run_id=rid, user_agent="curl/8"),
        token=check.ping_token,
        now=t0,
    )
    record_ping(
        ping=PingData(kind="fail", method="POST", run_id=rid, exit_status=3),
        token=check.ping_token,
        now=t0 + timedelta(seconds=12),
    )
    sweep_due_checks(now=t0 + timedelta(minutes=1))
    record_ping(
        ping=PingData(kind="success", method="POST"),
        token=check.ping_token,
        now=t0 + timedelta(minutes=2),
    )
    sweep_due_checks(now=t0 + timedelta(minutes=3))

    pings = curl("GET", f"/api/v3/checks/{check.id}/pings/").json()["pings"]
    assert [(p["n"], p["type"]) for p in pings] == [(3, "success"), (2, "fail"), (1, "start")]
    assert pings[1]["exitstatus"] == 3 and pings[1]["duration"] == 12.0
    assert pings[2]["ua"] == "curl/8" and pings[2]["rid"] == str(rid)

    # As Healthchecks' server answers: {"flips": [...]}, newest first.
    flips = curl("GET", f"/api/v3/checks/{check.id}/flips/").json()["flips"]
    assert [f["up"] for f in flips] == [1, 0]
    assert flips[0]["timestamp"] > flips[1]["timestamp"]
    assert curl("GET", f"/api/v3/checks/{check.id}/flips/?seconds=abc").status_code == 400
    key = hashlib.sha1(check.id.hex.encode(), usedforsecurity=False).hexdigest()
    assert curl("GET", f"/api/v3/checks/{key}/flips/").json()["flips"] == flips
    assert curl("GET", f"/api/v3/checks/{key.upper()}/flips").json()["flips"] == flips
    assert curl("GET", f"/api/v3/checks/{'0' * 40}/flips/").status_code == 404


def unique_key_of(check):
    return hashlib.sha1(check.id.hex.encode(), usedforsecurity=False).hexdigest()


def test_read_only_key_reads_flips_by_unique_key(ro_curl, check):
    response = ro_curl("GET", f"/api/v3/checks/{unique_key_of(check)}/flips/")
    assert response.status_code == 200
    assert response.json() == {"flips": []}


def test_another_teams_key_gets_404_by_unique_key(other_key, check):
    for path in ("/api/v3/checks/{key}", "/api/v3/checks/{key}/flips/"):
        response = Curl(other_key)("GET", path.format(key=unique_key_of(check)))
        assert response.status_code == 404


# --- Badges and status ----------------------------------------------------------------------


def test_badges_lists_every_tag_and_star_with_six_urls_that_work(curl, team, client):
    CheckFactory(team=team, tags="backup db", status=Check.Status.UP)
    CheckFactory(team=team, tags="db", status=Check.Status.LATE)
    response = curl("GET", "/api/v3/badges/")
    assert response.status_code == 200
    badges = response.json()["badges"]
    assert sorted(badges) == ["*", "backup", "db"]
    for urls in badges.values():
        assert sorted(urls) == ["json", "json3", "shields", "shields3", "svg", "svg3"]
        assert all(url.startswith("https://tocsin.example/badge/") for url in urls.values())

    def fetch(url):
        response = client.get(url.removeprefix("https://tocsin.example"))
        assert response.status_code == 200, url
        return response

    db = badges["db"]
    assert fetch(db["svg"])["Content-Type"] == "image/svg+xml"
    assert b">up<" in fetch(db["svg"]).content  # two states: late counts as up
    assert b">1 late<" in fetch(db["svg3"]).content
    assert json.loads(fetch(db["json"]).content) == {
        "status": "up",
        "total": 2,
        "grace": 1,
        "down": 0,
    }
    assert json.loads(fetch(db["json3"]).content)["status"] == "late"
    assert json.loads(fetch(db["shields"]).content)["message"] == "up"
    assert json.loads(fetch(db["shields3"]).content)["message"] == "1 late"
    star = json.loads(fetch(badges["*"]["json3"]).content)
    assert (star["status"], star["total"]) == ("late", 2)
    assert json.loads(fetch(badges["*"]["shields3"]).content)["label"] == team.name


def test_badges_are_only_the_keys_teams(curl, team, other_team):
    CheckFactory(team=other_team, tags="theirs", status=Check.Status.DOWN)
    badges = curl("GET", "/api/v3/badges").json()["badges"]
    assert list(badges) == ["*"]
    other = Curl(None)
    star = other.client.get(badges["*"]["json3"].removeprefix("https://tocsin.example"))
    assert json.loads(star.content) == {"status": "up", "total": 0, "grace": 0, "down": 0}


def test_badges_for_a_read_only_key_and_not_without_a_key(ro_curl, curl, check):
    assert ro_curl("GET", "/api/v3/badges/").status_code == 200
    assert Curl(None)("GET", "/api/v3/badges/").status_code == 401
    assert Curl("not-a-key")("GET", "/api/v3/badges/").status_code == 401
    assert ro_curl("POST", "/api/v3/badges/", {}).status_code == 403
    assert curl("POST", "/api/v3/badges/", {}).status_code == 405


def test_status_answers_ok_without_a_key(db, client):
    for path in ("/api/v3/status/", "/api/v3/status"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.content == b"OK"
        assert "no-cache" in response["Cache-Control"]
    assert client.head("/api/v3/status/").status_code == 200
    assert client.post("/api/v3/status/").status_code == 405


ENDPOINTS = [
    ("GET", "/api/v3/checks/{id}"),
    ("POST", "/api/v3/checks/{id}"),
    ("DELETE", "/api/v3/checks/{id}"),
    ("POST", "/api/v3/checks/{id}/pause"),
    ("POST", "/api/v3/checks/{id}/resume"),
    ("GET", "/api/v3/checks/{id}/pings/"),
    ("GET", "/api/v3/checks/{id}/pings/1/body"),
    ("GET", "/api/v3/checks/{id}/flips/"),
]


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_another_teams_key_gets_404(other_key, check, method, path):
    response = Curl(other_key)(method, path.format(id=check.id))
    assert response.status_code == 404
    assert Check.objects.filter(id=check.id, status="new").exists()


@pytest.mark.parametrize("method, path", [e for e in ENDPOINTS if e[0] != "GET"])
def test_read_only_key_gets_403_on_writes(ro_curl, check, method, path):
    assert ro_curl(method, path.format(id=check.id)).status_code == 403
    assert ro_curl("POST", "/api/v3/checks/", {"name": "x"}).status_code == 403
    assert Check.objects.count() == 1


@pytest.mark.parametrize("method, path", [*ENDPOINTS, ("GET", "/api/v3/checks/")])
def test_no_key_gets_401(check, method, path):
    assert Curl(None)(method, path.format(id=check.id)).status_code == 401


# --- Ping bodies and channels: read-write keys only ------------------------------------------


def test_ping_body_as_plain_text(curl, check, t0):
    log = "backup done\n\u00e9t\u00e9: 3 files\n".encode()
    record_ping(
        ping=PingData(kind="success", method="POST", body=log), token=check.ping_token, now=t0
    )
    record_ping(ping=PingData(kind="success", method="GET"), token=check.ping_token, now=t0)

    response = curl("GET", f"/api/v3/checks/{check.id}/pings/1/body")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == log
    assert curl("GET", f"/api/v3/checks/{check.id}/pings/1/body/").content == log
    # A ping without a body, and one that does not exist, are 404 as in Healthchecks.
    assert curl("GET", f"/api/v3/checks/{check.id}/pings/2/body").status_code == 404
    assert curl("GET", f"/api/v3/checks/{check.id}/pings/3/body").status_code == 404
    # Not a number, or absurdly long: no such path.
    assert curl("GET", f"/api/v3/checks/{check.id}/pings/x/body").status_code == 404
    assert curl("GET", f"/api/v3/checks/{check.id}/pings/{'9' * 30}/body").status_code == 404


def test_read_only_key_cannot_read_pings_or_their_bodies(ro_curl, check, t0):
    record_ping(
        ping=PingData(kind="fail", method="POST", body=b"password=hunter2"),
        token=check.ping_token,
        now=t0,
    )
    for path in ("pings/", "pings/1/body"):
        response = ro_curl("GET", f"/api/v3/checks/{check.id}/{path}")
        assert response.status_code == 403
        assert b"hunter2" not in response.content
    assert ro_curl("GET", "/api/v3/channels/").status_code == 403


def test_channels_list_is_the_teams_own(curl, team, other_team):
    from apps.notifications.models import Channel

    ours = Channel.objects.create(
        team=team, name="Ops hook", kind="webhook", config={"url": "https://hooks.example/x"}
    )
    Channel.objects.create(team=other_team, name="Theirs", kind="email", config={})

    response = curl("GET", "/api/v3/channels/")
    assert response.status_code == 200
    assert response.json() == {
        "channels": [{"id": str(ours.id), "name": "Ops hook", "kind": "webhook"}]
    }
    # The configuration (a URL that may embed a token) and the signing secret never show.
    assert b"hooks.example" not in response.content
    assert ours.secret.encode() not in response.content
    assert curl("POST", "/api/v3/channels/", {}).status_code == 405
    assert Curl(None)("GET", "/api/v3/channels/").status_code == 401


# --- The key in the JSON body, as Healthchecks allows for POST ------------------------------


def test_create_with_the_key_in_the_body(rw_key, team):
    response = Curl(None)(
        "POST", "/api/v3/checks/", {"api_key": rw_key, "name": "Body key", "timeout": 3600}
    )
    assert response.status_code == 201, response.json()
    check = Check.objects.get()
    assert (check.team, check.name) == (team, "Body key")


def test_pause_with_the_key_in_the_body(rw_key, check):
    response = Curl(None)("POST", f"/api/v3/checks/{check.id}/pause", {"api_key": rw_key})
    assert response.status_code == 200
    check.refresh_from_db()
    assert check.status == "paused"


@pytest.mark.parametrize(
    "body",
    [
        {"api_key": "tk_nope_nope", "name": "x"},
        {"api_key": "", "name": "x"},
        {"api_key": 12345, "name": "x"},
        {"api_key": ["a"], "name": "x"},
        {"api_key": "x" * 10_000, "name": "x"},
    ],
    ids=["unknown", "empty", "number", "list", "huge"],
)
def test_a_bad_body_key_creates_nothing(db, body):
    response = Curl(None)("POST", "/api/v3/checks/", body)
    assert response.status_code == 401
    assert not Check.objects.exists()


def test_body_keys_are_scoped_and_read_only_keys_cannot_write(ro_key, other_key, check):
    assert (
        Curl(None)("POST", "/api/v3/checks/", {"api_key": ro_key, "name": "x"}).status_code == 403
    )
    response = Curl(None)("POST", f"/api/v3/checks/{check.id}", {"api_key": other_key, "name": "x"})
    assert response.status_code == 404
    assert Check.objects.get().name == check.name


def test_a_header_key_wins_over_a_body_key(ro_key, rw_key, team):
    response = Curl(ro_key)("POST", "/api/v3/checks/", {"api_key": rw_key, "name": "x"})
    assert response.status_code == 403
    assert not Check.objects.filter(name="x").exists()


def test_get_with_a_body_key_is_still_401(rw_key, check):
    response = Client().generic(
        "GET",
        "/api/v3/checks/",
        json.dumps({"api_key": rw_key}),
        content_type="application/json",
    )
    assert response.status_code == 401
