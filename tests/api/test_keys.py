"""Team API keys: how they are made, stored, presented and refused."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command

from apps.api.models import ApiKey
from tests.factories import CheckFactory

from .conftest import Api


def test_createapikey_prints_the_key_once_and_stores_only_its_hash(team):
    out, err = io.StringIO(), io.StringIO()
    call_command("createapikey", "--team", "ops", "--name", "terraform", stdout=out, stderr=err)
    key = out.getvalue().strip().splitlines()[-1]
    stored = ApiKey.objects.get()
    assert stored.team == team
    assert stored.name == "terraform"
    assert not stored.is_read_only
    assert key.startswith(stored.prefix + "_")
    assert len(key) > 40
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {getattr(stored, f.attname) for f in ApiKey._meta.fields}
    assert f"read-write API key {stored.prefix}" in err.getvalue()
    assert Api(key).get("/api/tocsin/v1/checks/").status_code == 200


def test_createapikey_read_only_key_reads_but_cannot_write(team):
    out = io.StringIO()
    call_command("createapikey", "--team", "ops", "--read-only", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()
    assert ApiKey.objects.get().is_read_only
    api = Api(key)
    assert api.get("/api/tocsin/v1/checks/").status_code == 200
    response = api.post("/api/tocsin/v1/checks/", {"name": "x"})
    assert response.status_code == 403
    assert response.json() == {"error": "This API key is read-only.", "code": "permission_denied"}


def test_two_keys_are_never_the_same(team):
    keys = set()
    for _ in range(5):
        out = io.StringIO()
        call_command("createapikey", "--team", "ops", stdout=out, stderr=io.StringIO())
        keys.add(out.getvalue().strip())
    assert len(keys) == 5
    assert ApiKey.objects.count() == 5


@pytest.mark.parametrize(
    "args, message",
    [
        (["--team", "nope"], "No team with the slug 'nope'."),
        (["--team", "ops", "--name", "x" * 101], "--name must be at most 100 characters."),
    ],
    ids=["unknown-team", "long-name"],
)
def test_createapikey_refuses_bad_arguments_and_creates_nothing(team, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("createapikey", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_both_headers_carry_the_key(rw_key, team, header):
    CheckFactory(team=team, name="backup")
    response = Api(rw_key, header=header).get("/api/tocsin/v1/checks/")
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["results"]] == ["backup"]


def test_no_key_is_401_with_a_bearer_challenge(anon_api):
    response = anon_api.get("/api/tocsin/v1/checks/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer tk_00000000_not-a-real-key"},
        {"X-Api-Key": "tk_00000000_not-a-real-key"},
        {"X-Api-Key": "x" * 10_000},
        {"Authorization": "Bearer " + "\u00e9" * 50},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["unknown-bearer", "unknown-header", "huge", "non-ascii", "basic-auth"],
)
def test_wrong_keys_are_401(db, headers):
    response = Api(None).get("/api/tocsin/v1/checks/", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]


def test_revoked_key_is_401(rw_key, api):
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert api.get("/api/tocsin/v1/checks/").status_code == 401


def test_a_dashboard_session_is_not_an_api_key(owner_client):
    assert owner_client.get("/api/tocsin/v1/checks/").status_code == 401


def test_use_is_recorded_at_most_once_a_minute(api):
    api.get("/api/tocsin/v1/checks/")
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    api.get("/api/tocsin/v1/checks/")
    assert ApiKey.objects.get().last_used_at == first


def test_requests_over_the_rate_get_429_with_retry_after(api, settings):
    settings.API_THROTTLE_RATE = "3/minute"
    codes = [api.get("/api/tocsin/v1/checks/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = api.get("/api/tocsin/v1/checks/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "throttled"


def test_the_rate_is_counted_per_key(team, settings):
    from apps.api.keys import create_api_key

    settings.API_THROTTLE_RATE = "2/minute"
    first = Api(create_api_key(team=team, name="a", is_read_only=True).secret)
    second = Api(create_api_key(team=team, name="b", is_read_only=True).secret)
    assert [first.get("/api/tocsin/v1/checks/").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/tocsin/v1/checks/").status_code == 200
