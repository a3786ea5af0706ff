"""/ping/<ping key>/<slug>?create=1: a ping for an unknown slug creates the check."""

from datetime import timedelta

import pytest

from apps.checks.models import Check, Ping
from tests.factories import CheckFactory
from tests.live import fetch

from .test_ping_endpoint import PING_QUERIES


def test_unknown_slug_with_create_makes_the_check_and_records_the_ping(client, team):
    response = client.post(
        f"/ping/{team.ping_key}/db-backup/start?create=1", data=b"hello", content_type="text/plain"
    )
    assert response.status_code == 200
    check = Check.objects.get()
    assert (check.team, check.slug, check.name) == (team, "db-backup", "db-backup")
    assert (check.period, check.grace, check.status) == (
        timedelta(days=1),
        timedelta(hours=1),
        "new",
    )
    ping = Ping.objects.get()
    assert (ping.owner, ping.kind, bytes(ping.body)) == (check, "start", b"hello")
    assert check.n_pings == 1


def test_the_next_ping_with_create_uses_the_same_check(client, team):
    for _ in range(3):
        assert client.get(f"/ping/{team.ping_key}/db-backup?create=1").status_code == 200
    assert Check.objects.get().n_pings == 3


def test_without_create_an_unknown_slug_is_still_404(client, team):
    for query in ("", "?create=0", "?create=yes", "?created=1"):
        assert client.get(f"/ping/{team.ping_key}/db-backup{query}").status_code == 404
    assert not Check.objects.exists()


def test_unknown_ping_key_creates_nothing(client, team):
    assert client.get("/ping/not-a-ping-key-at-all/db-backup?create=1").status_code == 404
    assert not Check.objects.exists()


@pytest.mark.parametrize(
    "slug", ["bad%20slug", "caf%C3%A9", "semi;colon", "dot.ted"], ids=["space", "unicode", ";", "."]
)
def test_a_slug_that_cannot_be_a_check_slug_is_400(client, team, slug):
    response = client.get(f"/ping/{team.ping_key}/{slug}?create=1")
    assert response.status_code == 400
    assert response.content == b"invalid slug: use letters, digits, - and _"
    assert not Check.objects.exists()


def test_create_on_a_uuid_url_is_ignored(client, team):
    assert client.get("/ping/5f9d7a3c-0000-4000-8000-000000000000?create=1").status_code == 404
    assert not Check.objects.exists()


def test_create_for_a_known_slug_adds_no_query_to_the_ping(client, team, django_assert_num_queries):
    check = CheckFactory(team=team, slug="known")
    with django_assert_num_queries(PING_QUERIES):
        assert client.get(f"/ping/{team.ping_key}/known?create=1").status_code == 200
    check.refresh_from_db()
    assert check.n_pings == 1


def test_create_over_the_wsgi_fast_path(live_app_url, team):
    reply = fetch(live_app_url, "GET", f"/ping/{team.ping_key}/nightly/0?create=1")
    assert reply.status == 200
    check = Check.objects.get()
    assert check.slug == "nightly"
    assert Ping.objects.get(owner=check).exit_status == 0
