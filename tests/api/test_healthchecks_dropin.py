"""Issue 13: Tocsin as a drop-in for Healthchecks. One identity (the ping URL's UUID is the
API's uuid, both ways), free names, every API version, and the smaller differences that broke
clients (newest pings, body_url, CORS, unknown channels). Issue 11: what people read is
current (a ping answered 200 shows in the status before any sweep)."""

from datetime import timedelta

import pytest
from django.test import Client

from apps.checks.models import Check, Ping
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.notifications.models import Channel
from tests.api.test_healthchecks_v3 import Curl
from tests.factories import CheckFactory

VERSIONS = [1, 2, 3]


@pytest.fixture
def curl(rw_key):
    return Curl(rw_key)


# --- One identity -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_the_uuid_from_the_api_is_the_ping_url(curl, client, version):
    created = curl("POST", f"/api/v{version}/checks/", {"name": "backup", "timeout": 3600})
    assert created.status_code == 201
    code = created.json()["uuid"]
    assert created.json()["ping_url"] == f"https://tocsin.example/ping/{code}"
    assert client.get(f"/ping/{code}").status_code == 200
    assert Check.objects.get(id=code).n_pings == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_the_uuid_of_a_ping_url_finds_the_check_in_the_api(curl, check, version):
    ping_url_code = str(check.ping_token)
    response = curl("GET", f"/api/v{version}/checks/{ping_url_code}")
    assert response.status_code == 200
    assert response.json()["uuid"] == ping_url_code
    assert response.json()["update_url"].endswith(f"/api/v{version}/checks/{ping_url_code}")


def test_tocsin_api_id_is_the_ping_url_uuid(rw_key, check):
    body = Client().get(f"/api/tocsin/v1/checks/{check.id}/", headers={"X-Api-Key": rw_key})
    assert body.json()["ping_url"] == f"https://tocsin.example/ping/{body.json()['id']}"


# --- Free names -------------------------------------------------------------------------------


def test_two_checks_may_share_a_name_and_checks_may_be_nameless(curl):
    for body in ({"name": "backup"}, {"name": "backup"}, {}, {"name": ""}):
        response = curl("POST", "/api/v3/checks/", body)
        assert response.status_code == 201, response.json()
    names = sorted(Check.objects.values_list("name", flat=True))
    assert names == ["", "", "backup", "backup"]
    assert sorted(Check.objects.values_list("slug", flat=True)) == ["", "", "backup", "backup"]


def test_a_shared_slug_answers_409_to_pings_until_one_check_changes_it(curl, client, team):
    ids = [curl("POST", "/api/v3/checks/", {"name": "Nightly"}).json()["uuid"] for _ in "ab"]
    assert client.get(f"/ping/{team.ping_key}/nightly").status_code == 409
    assert not Ping.objects.exists()
    assert curl("POST", f"/api/v3/checks/{ids[1]}", {"slug": "nightly-2"}).status_code == 200
    assert client.get(f"/ping/{team.ping_key}/nightly").status_code == 200
    assert Check.objects.get(id=ids[0]).n_pings == 1


def test_tocsin_api_by_slug_answers_409_for_a_shared_slug(rw_key, team):
    CheckFactory(team=team, slug="twin")
    CheckFactory(team=team, slug="twin")
    api = Client()
    response = api.get("/api/tocsin/v1/checks/by-slug/twin/", headers={"X-Api-Key": rw_key})
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


@pytest.mark.parametrize(("version", "slug"), [(1, "my-nightly-job"), (2, "my-nightly-job")])
def test_v1_and_v2_derive_the_slug_from_the_name(curl, version, slug):
    created = curl("POST", f"/api/v{version}/checks/", {"name": "My Nightly Job"}).json()
    assert created["slug"] == slug
    renamed = curl(
        "POST", created["update_url"].removeprefix("https://tocsin.example"), {"name": "Other"}
    )
    assert renamed.json()["slug"] == "other"


def test_v3_keeps_the_slug_when_the_name_changes(curl):
    created = curl("POST", "/api/v3/checks/", {"name": "Job", "slug": "my-job"}).json()
    renamed = curl("POST", f"/api/v3/checks/{created['uuid']}", {"name": "Other"}).json()
    assert (renamed["name"], renamed["slug"]) == ("Other", "my-job")


# --- Versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "status"), [(1, "started"), (2, "up"), (3, "up")])
def test_a_running_check_is_started_in_v1_and_has_the_field_in_v2_and_v3(
    curl, check, t0, version, status
):
    record_ping(ping=PingData(kind="success", method="GET"), token=check.id, now=t0)
    record_ping(ping=PingData(kind="start", method="GET"), token=check.id, now=t0)
    body = curl("GET", f"/api/v{version}/checks/{check.id}").json()
    assert (body["status"], body["started"]) == (status, True)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_answers_and_links_into_itself(curl, check, client, version):
    record_ping(ping=PingData(kind="log", method="POST", body=b"output"), token=check.id)
    base = f"/api/v{version}"
    listed = curl("GET", f"{base}/checks/").json()["checks"]
    assert [c["uuid"] for c in listed] == [str(check.id)]
    pings = curl("GET", f"{base}/checks/{check.id}/pings/").json()["pings"]
    assert pings[0]["body_url"] == f"https://tocsin.example{base}/checks/{check.id}/pings/1/body"
    assert curl("GET", pings[0]["body_url"].removeprefix("https://tocsin.example")).content == (
        b"output"
    )
    for path in ("flips/", "pause", "resume"):
        method = "GET" if path == "flips/" else "POST"
        assert curl(method, f"{base}/checks/{check.id}/{path}").status_code in (200, 409)
    for path in ("channels/", "badges/", "status/"):
        assert curl("GET", f"{base}/{path}").status_code == 200


# --- Newest pings, body_url ------------------------------------------------------------------


def test_the_ping_list_shows_the_newest_pings(curl, check, settings, t0):
    settings.PINGS_KEPT_PER_CHECK = 100  # the list shows at most twice that
    for _ in range(230):
        record_ping(ping=PingData(kind="success", method="GET"), token=check.id, now=t0)
    numbers = [p["n"] for p in curl("GET", f"/api/v3/checks/{check.id}/pings/").json()["pings"]]
    assert numbers == list(range(230, 30, -1))


def test_a_ping_without_a_body_has_a_null_body_url(curl, check):
    record_ping(ping=PingData(kind="success", method="GET"), token=check.id)
    assert curl("GET", f"/api/v3/checks/{check.id}/pings/").json()["pings"][0]["body_url"] is None


# --- CORS, channels ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["checks/", "checks/{id}", "checks/{id}/pings/", "badges/"])
def test_a_cors_preflight_needs_no_key(check, path, client):
    response = client.options(
        f"/api/v3/{path.format(id=check.id)}",
        headers={"origin": "https://ui.example", "access-control-request-headers": "x-api-key"},
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Allow-Headers"] == "X-Api-Key"
    assert "GET" in response["Access-Control-Allow-Methods"]


def test_answers_allow_any_origin(curl, check):
    assert curl("GET", "/api/v3/checks/")["Access-Control-Allow-Origin"] == "*"


def test_channels_must_name_the_teams_channels(curl, team, other_team):
    Channel.objects.create(team=team, name="ops-mail", kind="email", config={"address": "o@x.io"})
    theirs = Channel.objects.create(
        team=other_team, name="their-mail", kind="email", config={"address": "t@x.io"}
    )
    ok = curl("POST", "/api/v3/checks/", {"name": "a", "channels": "ops-mail"})
    assert ok.status_code == 201
    for channels in ("nope", "ops-mail,nope", str(theirs.id), "ops-mail,"):
        response = curl("POST", "/api/v3/checks/", {"name": "b", "channels": channels})
        assert response.status_code == 400, channels
        assert response.json()["error"].endswith(
            ("identifier: nope", "identifier: " + str(theirs.id), "empty channel identifier")
        )
    assert Check.objects.count() == 1
    for channels in ("", "*"):
        assert (
            curl("POST", "/api/v3/checks/", {"name": "c", "channels": channels}).status_code == 201
        )


# --- What people read is current (issue 11) --------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_ping_shows_as_up_at_once_without_a_sweep(curl, client, check, version):
    assert curl("GET", f"/api/v{version}/checks/{check.id}").json()["status"] == "new"
    assert client.get(f"/ping/{check.id}").status_code == 200
    body = curl("GET", f"/api/v{version}/checks/{check.id}").json()
    assert body["status"] == "up"
    assert body["next_ping"] is not None
    listed = curl("GET", f"/api/v{version}/checks/").json()["checks"]
    assert [c["status"] for c in listed] == ["up"]
    check.refresh_from_db()
    assert (check.status, check.processed_n) == ("new", 0)  # reading wrote nothing


def test_a_down_check_that_pings_reads_up_before_the_sweep(curl, client, check, t0):
    record_ping(ping=PingData(kind="fail", method="GET"), token=check.id, now=t0)
    sweep_due_checks(now=t0)
    assert curl("GET", f"/api/v3/checks/{check.id}").json()["status"] == "down"
    assert client.get(f"/ping/{check.id}").status_code == 200
    assert curl("GET", f"/api/v3/checks/{check.id}").json()["status"] == "up"


def test_tocsin_api_and_the_check_page_read_current(rw_key, client, check, owner):
    assert client.get(f"/ping/{check.id}/fail").status_code == 200
    api = Client()
    one = api.get(f"/api/tocsin/v1/checks/{check.id}/", headers={"X-Api-Key": rw_key}).json()
    many = api.get("/api/tocsin/v1/checks/", headers={"X-Api-Key": rw_key}).json()
    assert one["status"] == "down"
    assert [c["status"] for c in many["results"]] == ["down"]
    page = Client()
    page.force_login(owner)
    assert 'data-status="down"' in page.get(f"/checks/{check.id}/").text
    check.refresh_from_db()
    assert check.status == "new"  # the sweep has not run; reading wrote nothing


# --- The UUID is a secret now: read-only keys never see it -----------------------------------


def test_read_only_keys_see_no_check_uuid_anywhere_in_tocsins_api(ro_key, check, t0):
    from apps.escalation.models import Silence

    record_ping(ping=PingData(kind="fail", method="GET"), token=check.id, now=t0)
    sweep_due_checks(now=t0)
    Silence.objects.create(
        team=check.team,
        starts_at=t0,
        ends_at=t0 + timedelta(days=3650),
        matchers={"check_ids": [str(check.id)]},
        comment="c",
        created_at=t0,
    )
    api = Client()
    headers = {"X-Api-Key": ro_key}
    for path in ("checks/", "incidents/", "silences/?state=ended", "silences/", "metrics/"):
        response = api.get(f"/api/tocsin/v1/{path}", headers=headers)
        assert response.status_code == 200, path
        text = response.content.decode()
        assert str(check.id) not in text and check.id.hex not in text, path
    listed = api.get("/api/tocsin/v1/checks/", headers=headers).json()["results"][0]
    assert listed["id"] == listed["unique_key"] == check.unique_key
    one = api.get(f"/api/tocsin/v1/checks/{check.unique_key}/", headers=headers)
    assert one.status_code == 200 and one.json()["name"] == check.name
    assert api.get(f"/api/tocsin/v1/checks/{'0' * 40}/", headers=headers).status_code == 404


def test_a_badge_url_does_not_carry_the_ping_url(curl, check):
    import base64

    body = curl("GET", f"/api/v3/checks/{check.id}").json()
    token = body["badge_url"].rsplit("/", 1)[1].split(".")[0].split(":")[0]
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert check.id.hex not in decoded and str(check.badge_key.hex) in decoded


# --- Setup as code: dependencies and the policy through the API -------------------------------


def test_dependencies_and_policy_are_set_and_kept_through_the_apis(rw_key, team, other_team):
    from apps.escalation.models import EscalationPolicy

    policy = EscalationPolicy.objects.create(team=team, name="Night shift")
    parent = CheckFactory(team=team, name="db")
    theirs = CheckFactory(team=other_team)
    api, headers = Client(), {"X-Api-Key": rw_key}

    def post(body):
        return api.post(
            "/api/tocsin/v1/checks/", body, content_type="application/json", headers=headers
        )

    created = post({"name": "app", "depends_on": [str(parent.id)], "escalation_policy": policy.id})
    assert created.status_code == 201, created.json()
    assert created.json()["depends_on"] == [str(parent.id)]
    assert created.json()["escalation_policy"] == policy.id
    check_id = created.json()["id"]
    # A change that names neither (a Healthchecks client's, a PATCH) keeps both.
    Curl(rw_key)("POST", f"/api/v3/checks/{check_id}", {"grace": 120})
    api.patch(
        f"/api/tocsin/v1/checks/{check_id}/",
        {"tags": ["x"]},
        content_type="application/json",
        headers=headers,
    )
    check = Check.objects.get(id=check_id)
    assert (list(check.depends_on.all()), check.escalation_policy) == ([parent], policy)
    # Another team's check or policy is refused like an unknown one.
    for body in ({"depends_on": [str(theirs.id)]}, {"escalation_policy": 10**6}):
        response = post({"name": "bad", **body})
        assert response.status_code == 400
        assert set(response.json()["fields"]) == set(body)
