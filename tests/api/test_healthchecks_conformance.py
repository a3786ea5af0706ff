"""Conformance with Healthchecks' Management API documentation, version by version.

Walks the requests of the documentation's examples (docs/api for v3, docs/apiv2 and docs/apiv1:
list, get, create, update, pause, resume, pings, ping body, flips, channels, badges, status,
delete, and the documented error codes), sent as its curl lines send them (a form content type
around a JSON body, the key in a header or in the body), and asserts the documented status
codes, content types and, for every JSON answer, the field names and JSON types of the
documented example. Extra fields are allowed (Healthchecks' own server adds some); missing or
mistyped ones are not. The field lists below are facts read from those documents."""

import json
from datetime import timedelta

import pytest
from django.test import Client

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.notifications.models import Channel

S, N, B, NS = "string", "number", "boolean", "string-or-null"

# The documented example of a check (read-write key), by version.
CHECK_V1 = {
    "channels": S, "desc": S, "grace": N, "last_ping": NS, "n_pings": N, "name": S, "slug": S,
    "next_ping": NS, "manual_resume": B, "methods": S, "start_kw": S, "success_kw": S,
    "failure_kw": S, "filter_subject": B, "filter_body": B, "pause_url": S, "resume_url": S,
    "ping_url": S, "status": S, "tags": S, "timeout": N, "update_url": S,
}  # fmt: skip
CHECK_V2 = {**CHECK_V1, "started": B}
CHECK_V3 = {
    **CHECK_V2, "subject": S, "subject_fail": S, "filter_http_body": B,
    "filter_default_fail": B, "badge_url": S, "uuid": S,
}  # fmt: skip
CHECK = {1: CHECK_V1, 2: CHECK_V2, 3: CHECK_V3}
# A read-only key: these are left out, unique_key is added (documented from v1 on).
SECRET_FIELDS = {"uuid", "ping_url", "update_url", "pause_url", "resume_url", "channels"}
PING = {
    "type": S, "date": S, "n": N, "scheme": S, "remote_addr": S, "method": S, "ua": S,
    "rid": NS, "body_url": NS,
}  # fmt: skip
FLIP = {"timestamp": S, "up": N}
CHANNEL = {"id": S, "name": S, "kind": S}
BADGE = dict.fromkeys(("svg", "svg3", "json", "json3", "shields", "shields3"), S)
STATUSES = {1: {"new", "started", "up", "grace", "down", "paused"}}
STATUSES[2] = STATUSES[3] = STATUSES[1] - {"started"}
DOCUMENTED_CREATE = {"name": "Backups", "tags": "prod www", "timeout": 3600, "grace": 60}


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return B
    if isinstance(value, int | float):
        return N
    return {str: S, list: "array", dict: "object"}[type(value)]


def assert_shaped(document: dict, fields: dict, version: int) -> None:
    for name, wanted in fields.items():
        assert name in document, f"v{version}: {name} missing"
        got = json_type(document[name])
        allowed = {S, "null"} if wanted == NS else {wanted}
        assert got in allowed, f"v{version}: {name} is {got}, documented {wanted}"


def assert_check(document: dict, version: int, *, read_only: bool = False) -> None:
    fields = dict(CHECK[version])
    if "timeout" not in document:  # a cron or OnCalendar check has schedule and tz instead
        fields.pop("timeout")
        fields.update(schedule=S, tz=S)
    if read_only:
        for name in SECRET_FIELDS:
            fields.pop(name, None)
            assert name not in document, f"v{version}: a read-only key sees {name}"
        fields["unique_key"] = S
    assert_shaped(document, fields, version)
    assert document["status"] in STATUSES[version]


class Curl:
    """A documented curl line: `--header "X-Api-Key: ..."` and `--data '<json>'` (which curl
    sends as application/x-www-form-urlencoded)."""

    def __init__(self, key=None):
        self.client = Client()
        self.key = key

    def __call__(self, method, path, data=None, *, key_in_body=False):
        headers = {} if key_in_body or self.key is None else {"X-Api-Key": self.key}
        kwargs = {"headers": headers}
        if data is not None:
            if key_in_body:
                data = {"api_key": self.key, **data}
            kwargs["data"] = data if isinstance(data, str) else json.dumps(data)
            kwargs["content_type"] = "application/x-www-form-urlencoded"
        return getattr(self.client, method.lower())(path, **kwargs)


def assert_json(response, status: int):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    return response.json()


@pytest.fixture
def history(team, t0):
    """A check with a run (start, then success with a body), a failure and its flips."""
    from tests.factories import CheckFactory

    check = CheckFactory(team=team, name="Filesystem Backup", slug="filesystem-backup")
    record_ping(
        ping=PingData(kind="start", method="GET", user_agent="curl/7.68.0"), token=check.id, now=t0
    )
    record_ping(
        ping=PingData(kind="success", method="POST", body=b"3 files"),
        token=check.id,
        now=t0 + timedelta(seconds=3),
    )
    sweep_due_checks(now=t0 + timedelta(seconds=4))
    record_ping(
        ping=PingData(kind="fail", method="GET"), token=check.id, now=t0 + timedelta(minutes=1)
    )
    sweep_due_checks(now=t0 + timedelta(minutes=1, seconds=1))
    Channel.objects.create(
        team=team, name="My Work Email", kind="email", config={"address": "w@x.io"}
    )
    return check


@pytest.mark.parametrize("version", [1, 2, 3])
def test_the_documented_examples_in_order(rw_key, ro_key, history, version):
    curl, base = Curl(rw_key), f"/api/v{version}"

    # List Existing Checks
    listed = assert_json(curl("GET", f"{base}/checks/"), 200)
    assert list(listed) == ["checks"]
    for document in listed["checks"]:
        assert_check(document, version)

    # Get a Single Check, by uuid, and by unique_key with a read-only key
    one = assert_json(curl("GET", f"{base}/checks/{history.id}"), 200)
    assert_check(one, version)
    read_only = assert_json(Curl(ro_key)("GET", f"{base}/checks/"), 200)["checks"][0]
    assert_check(read_only, version, read_only=True)
    by_key = Curl(ro_key)("GET", f"{base}/checks/{read_only['unique_key']}")
    assert_check(assert_json(by_key, 200), version, read_only=True)

    # Create a Check: the key in a header, then in the body
    created = assert_json(curl("POST", f"{base}/checks/", DOCUMENTED_CREATE), 201)
    assert_check(created, version)
    assert (created["name"], created["tags"], created["timeout"], created["grace"]) == (
        "Backups", "prod www", 3600, 60,
    )  # fmt: skip
    assert (created["status"], created["n_pings"], created["last_ping"]) == ("new", 0, None)
    if version < 3:
        assert created["slug"] == "backups"  # the documented v1/v2 example
    again = curl("POST", f"{base}/checks/", DOCUMENTED_CREATE, key_in_body=True)
    assert_check(assert_json(again, 201), version)
    code = created["uuid"] if version == 3 else created["update_url"].rsplit("/", 1)[1]
    assert created["update_url"] == f"https://tocsin.example{base}/checks/{code}"
    assert created["ping_url"].endswith(f"/ping/{code}")

    # Update an Existing Check (both documented forms)
    updated = curl("POST", f"{base}/checks/{code}", DOCUMENTED_CREATE | {"tags": "prod"})
    assert assert_json(updated, 200)["tags"] == "prod"
    updated = curl("POST", f"{base}/checks/{code}", {"grace": 120}, key_in_body=True)
    assert_check(assert_json(updated, 200), version)

    # Pause, then Resume (--request POST --data "")
    paused = assert_json(curl("POST", f"{base}/checks/{code}/pause", ""), 200)
    assert paused["status"] == "paused"
    assert assert_json(curl("POST", f"{base}/checks/{code}/resume", ""), 200)["status"] == "new"
    assert curl("POST", f"{base}/checks/{code}/resume", "").status_code == 409

    # List check's logged pings, and a ping's logged body
    pings = assert_json(curl("GET", f"{base}/checks/{history.id}/pings/"), 200)
    assert list(pings) == ["pings"]
    assert [p["n"] for p in pings["pings"]] == [3, 2, 1]
    for ping in pings["pings"]:
        assert_shaped(ping, PING, version)
    assert pings["pings"][1]["duration"] == 3.0
    body = curl("GET", f"{base}/checks/{history.id}/pings/2/body")
    assert body.status_code == 200 and body["Content-Type"].startswith("text/plain")
    assert body.content == b"3 files"
    assert curl("GET", f"{base}/checks/{history.id}/pings/1/body").status_code == 404

    # List check's status changes (and the documented filters)
    flips = assert_json(curl("GET", f"{base}/checks/{history.id}/flips/"), 200)["flips"]
    assert [flip["up"] for flip in flips] == [0, 1]
    for flip in flips:
        assert_shaped(flip, FLIP, version)
    for query in ("?seconds=3600", "?start=1592214380", "?end=1592217980"):
        assert curl("GET", f"{base}/checks/{history.id}/flips/{query}").status_code == 200
    assert curl("GET", f"{base}/checks/{history.id}/flips/?seconds=x").status_code == 400

    # List Existing Integrations, List Project's Badges, Check Database Connectivity
    channels = assert_json(curl("GET", f"{base}/channels/"), 200)["channels"]
    assert [c["name"] for c in channels] == ["My Work Email"]
    assert_shaped(channels[0], CHANNEL, version)
    badges = assert_json(curl("GET", f"{base}/badges/"), 200)["badges"]
    assert {"*", "backup", "nightly"} <= set(badges)
    for urls in badges.values():
        assert_shaped(urls, BADGE, version)
    status = Client().get(f"{base}/status/")
    assert (status.status_code, status.content) == (200, b"OK")

    # Delete Check: answers with the deleted check
    deleted = assert_json(curl("DELETE", f"{base}/checks/{code}"), 200)
    assert_check(deleted, version)
    assert curl("GET", f"{base}/checks/{code}").status_code == 404


@pytest.mark.parametrize("version", [1, 2, 3])
def test_the_documented_error_codes(rw_key, ro_key, history, version):
    base = f"/api/v{version}"
    # 401: the API key is either missing or invalid.
    for key in (None, "x" * 32):
        for method, path in (("GET", "checks/"), ("POST", "checks/"), ("GET", "channels/")):
            assert Curl(key)(method, f"{base}/{path}").status_code == 401
    curl = Curl(rw_key)
    # 400: the request is not well-formed, violates schema, or uses invalid field values.
    for bad in ("not json", {"timeout": "an hour"}, {"grace": 59}, {"tz": "Mars/Base"}):
        response = curl("POST", f"{base}/checks/", bad)
        assert response.status_code == 400, bad
        assert isinstance(response.json()["error"], str)
    # 404: the specified check does not exist.
    missing = "7918b17b-a745-4db1-8575-9d2e07c97f79"
    for method, path in (("GET", ""), ("POST", "/pause"), ("GET", "/pings/"), ("DELETE", "")):
        assert curl(method, f"{base}/checks/{missing}{path}").status_code == 404
    # A read-only key only works with the documented read endpoints.
    read_only = Curl(ro_key)
    assert read_only("GET", f"{base}/checks/{history.id}/flips/").status_code == 200
    for method, path in (("POST", "checks/"), ("GET", "channels/")):
        assert read_only(method, f"{base}/{path}").status_code in (401, 403)
