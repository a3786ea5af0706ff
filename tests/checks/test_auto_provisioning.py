"""/ping/<ping key>/<slug>?create=1: a ping for an unknown slug creates the check."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from apps.checks.models import DEFAULT_MAX_CHECKS, Check, CheckDefaults, Ping
from apps.checks.pings import PingData, record_ping
from apps.checks.services import Provisioning, provision_check
from apps.checks.sweeper import sweep_due_checks
from apps.escalation.models import EscalationPolicy
from tests.factories import CheckFactory, TeamFactory
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


# --- Team defaults --------------------------------------------------------------------------

S, MIN = timedelta(seconds=1), timedelta(minutes=1)


def test_a_provisioned_check_takes_the_teams_defaults(client, team):
    policy = EscalationPolicy.objects.create(team=team, name="Night shift")
    CheckDefaults.objects.create(
        team=team,
        schedule_kind="cron",
        schedule_expression="30 2 * * *",
        timezone="Europe/Riga",
        grace=90 * S,
        tags="auto nightly",
        escalation_policy=policy,
    )
    assert client.get(f"/ping/{team.ping_key}/db-backup?create=1").status_code == 200
    check = Check.objects.get()
    assert (check.schedule_kind, check.schedule_expression, check.timezone) == (
        "cron",
        "30 2 * * *",
        "Europe/Riga",
    )
    assert (check.grace, check.tags, check.escalation_policy) == (90 * S, "auto nightly", policy)
    assert check.n_pings == 1


def test_without_a_defaults_row_the_limit_is_the_default(team):
    assert CheckDefaults(team=team).max_checks == DEFAULT_MAX_CHECKS == 500


def test_another_teams_defaults_are_never_used(client, team, other_team):
    CheckDefaults.objects.create(team=other_team, tags="theirs", grace=5 * MIN)
    assert client.get(f"/ping/{team.ping_key}/db-backup?create=1").status_code == 200
    check = Check.objects.get()
    assert (check.team, check.tags, check.grace) == (team, "", timedelta(hours=1))


def test_a_policy_of_another_team_in_the_defaults_is_not_given_to_the_check(team, other_team):
    # The form only offers the team's policies; this row is forced past it.
    theirs = EscalationPolicy.objects.create(team=other_team, name="Theirs")
    CheckDefaults.objects.create(team=team, escalation_policy=theirs)
    result = provision_check(ping_key=team.ping_key, slug="db-backup")
    assert result.outcome == Provisioning.CREATED
    assert Check.objects.get().escalation_policy is None


def test_a_provisioned_check_is_judged_by_its_default_schedule(team, t0):
    CheckDefaults.objects.create(team=team, period=2 * MIN, grace=30 * S)
    assert provision_check(ping_key=team.ping_key, slug="quick").outcome == Provisioning.CREATED
    check = Check.objects.get()
    record_ping(ping=PingData(kind="success", method="GET"), token=check.ping_token, now=t0)
    skew = 5 * S  # settings.CLOCK_SKEW_ALLOWANCE
    sweep_due_checks(now=t0 + 2 * MIN + 30 * S + skew - S)
    check.refresh_from_db()
    assert check.status == "late"
    sweep_due_checks(now=t0 + 2 * MIN + 30 * S + skew)
    check.refresh_from_db()
    assert check.status == "down"


# --- The limit ------------------------------------------------------------------------------


def test_beyond_the_limit_the_ping_is_refused_with_403_and_counted(client, team):
    CheckDefaults.objects.create(team=team, max_checks=2)
    CheckFactory(team=team, slug="one")
    CheckFactory(team=team, slug="two")
    response = client.post(
        f"/ping/{team.ping_key}/three/fail?create=1", data=b"output", content_type="text/plain"
    )
    assert response.status_code == 403
    assert response.content == (
        b"forbidden: the team has reached its limit of 2 checks for auto-provisioning; "
        b"the ping was not recorded"
    )
    assert not Check.objects.filter(slug="three").exists()
    assert not Ping.objects.exists()
    defaults = CheckDefaults.objects.get(team=team)
    assert (defaults.refused_pings, defaults.last_refused_slug) == (1, "three")
    assert defaults.last_refused_at is not None


def test_a_refusal_records_when_it_happened(team, t0):
    CheckDefaults.objects.create(team=team, max_checks=0)
    for minutes in (0, 5):
        result = provision_check(ping_key=team.ping_key, slug="late-job", now=t0 + minutes * MIN)
        assert (result.outcome, result.max_checks) == (Provisioning.LIMIT_REACHED, 0)
    defaults = CheckDefaults.objects.get(team=team)
    assert (defaults.refused_pings, defaults.last_refused_at) == (2, t0 + 5 * MIN)


def test_a_refusal_without_a_defaults_row_creates_one(team, t0):
    CheckFactory.create_batch(DEFAULT_MAX_CHECKS, team=team)
    result = provision_check(ping_key=team.ping_key, slug="one-too-many", now=t0)
    assert result.outcome == Provisioning.LIMIT_REACHED
    defaults = CheckDefaults.objects.get(team=team)
    assert (defaults.refused_pings, defaults.last_refused_slug, defaults.last_refused_at) == (
        1,
        "one-too-many",
        t0,
    )
    assert defaults.max_checks == DEFAULT_MAX_CHECKS


def test_limit_zero_turns_auto_provisioning_off(client, team):
    CheckDefaults.objects.create(team=team, max_checks=0)
    response = client.get(f"/ping/{team.ping_key}/db-backup?create=1")
    assert response.status_code == 403
    assert response.content == b"forbidden: auto-provisioning is off for this team"
    assert not Check.objects.exists()


def test_at_the_limit_known_checks_still_take_pings_with_create(
    client, team, django_assert_num_queries
):
    CheckDefaults.objects.create(team=team, max_checks=1)
    check = CheckFactory(team=team, slug="known")
    with django_assert_num_queries(PING_QUERIES):
        assert client.get(f"/ping/{team.ping_key}/known?create=1").status_code == 200
    assert client.get(f"/ping/{check.ping_token}").status_code == 200
    check.refresh_from_db()
    assert check.n_pings == 2


def test_the_limit_counts_only_the_pinged_teams_checks(client, team, other_team):
    CheckDefaults.objects.create(team=team, max_checks=1)
    CheckFactory.create_batch(3, team=other_team)
    assert client.get(f"/ping/{team.ping_key}/first?create=1").status_code == 200
    assert client.get(f"/ping/{team.ping_key}/second?create=1").status_code == 403
    assert list(Check.objects.filter(team=team).values_list("slug", flat=True)) == ["first"]
    assert not CheckDefaults.objects.filter(team=other_team).exists()


def test_refusal_over_the_wsgi_fast_path(live_app_url, team):
    CheckDefaults.objects.create(team=team, max_checks=0)
    reply = fetch(live_app_url, "GET", f"/ping/{team.ping_key}/nightly?create=1")
    assert reply.status == 403
    assert not Check.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_new_slugs_cannot_both_take_the_last_place():
    team = TeamFactory()
    CheckDefaults.objects.create(team=team, max_checks=1)
    barrier = threading.Barrier(4)
    outcomes = []

    def provision(slug):
        try:
            barrier.wait()
            outcomes.append(provision_check(ping_key=team.ping_key, slug=slug).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=provision, args=(f"job-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == sorted([Provisioning.CREATED] + 3 * [Provisioning.LIMIT_REACHED])
    assert Check.objects.filter(team=team).count() == 1
    assert CheckDefaults.objects.get(team=team).refused_pings == 3
