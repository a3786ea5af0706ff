"""Check dependencies over /api/tocsin/v1/checks/ (`depends_on`): set, read, cleared, checked by
the dashboard's CheckForm (no cycles, the team's own checks only, at most 20), and obeyed by
the real sweep: a dependent failing while its parent is down tells nobody."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail

from apps.checks.models import Check
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.notifications.delivery import deliver, due_delivery_ids
from apps.notifications.flush import flush_due_groups
from tests.factories import CheckFactory

CHECKS = "/api/tocsin/v1/checks/"


@pytest.fixture
def db_check(team):
    return CheckFactory(team=team, name="database")


@pytest.fixture
def app_check(team):
    return CheckFactory(team=team, name="app")


def depend(api, check, *parents):
    return api.patch(f"{CHECKS}{check.id}/", {"depends_on": [str(p.id) for p in parents]})


def test_dependencies_are_set_read_and_cleared(api, ro_api, db_check, app_check):
    cache = CheckFactory(team=db_check.team, name="cache")
    response = depend(api, app_check, db_check, cache)
    assert response.status_code == 200, response.json()
    assert sorted(response.json()["depends_on"]) == sorted([str(db_check.id), str(cache.id)])
    assert set(app_check.depends_on.all()) == {db_check, cache}
    # A read-only key never sees a ping URL's UUID: the parents' unique_keys instead.
    shown = ro_api.get(f"{CHECKS}{app_check.unique_key}/").json()["depends_on"]
    assert sorted(shown) == sorted([db_check.unique_key, cache.unique_key])
    cleared = depend(api, app_check)
    assert cleared.status_code == 200 and cleared.json()["depends_on"] == []
    assert not app_check.depends_on.exists()


def test_a_check_cannot_depend_on_itself(api, app_check):
    response = depend(api, app_check, app_check)
    assert response.status_code == 400
    assert response.json()["fields"]["depends_on"] == [
        f"“{app_check.id}” is not another check of this team: a check depends only on other "
        "checks of its own team, never on itself."
    ]
    assert not app_check.depends_on.exists()


def test_a_cycle_through_other_checks_is_refused_with_the_check_that_closes_it(
    api, team, db_check, app_check
):
    web = CheckFactory(team=team, name="web")
    assert depend(api, web, app_check).status_code == 200
    assert depend(api, app_check, db_check).status_code == 200
    # database -> web -> app -> database would be a loop.
    response = depend(api, db_check, web)
    assert response.status_code == 400
    (message,) = response.json()["fields"]["depends_on"]
    assert message.startswith("“web” already depends on this check")
    assert not db_check.depends_on.exists()


def test_another_teams_check_or_an_unknown_id_is_refused(api, app_check, other_team):
    theirs = CheckFactory(team=other_team, name="theirs")
    for parent_id in (str(theirs.id), str(uuid.uuid4())):
        response = api.patch(f"{CHECKS}{app_check.id}/", {"depends_on": [parent_id]})
        assert response.status_code == 400
        (message,) = response.json()["fields"]["depends_on"]
        assert message.startswith(f"“{parent_id}” is not another check of this team")
    assert not app_check.depends_on.exists()


@pytest.mark.parametrize(
    "value",
    [
        "not-a-list",
        ["not-a-uuid"],
        [7],
        [None],
        None,
        ["' OR 1=1 --"],
        [str(uuid.uuid4()) for _ in range(51)],
    ],
    ids=["string", "not-a-uuid", "number", "null-item", "null", "sql", "too-many"],
)
def test_malformed_dependencies_are_refused(api, app_check, value):
    response = api.patch(f"{CHECKS}{app_check.id}/", {"depends_on": value})
    assert response.status_code == 400, response.json()
    assert "depends_on" in response.json()["fields"]


def test_more_than_the_forms_limit_is_refused(api, team, app_check):
    parents = [CheckFactory(team=team, name=f"p{n}") for n in range(21)]
    response = depend(api, app_check, *parents)
    assert response.status_code == 400
    assert response.json()["fields"]["depends_on"] == ["A check may depend on at most 20."]


def test_read_only_key_cannot_set_and_another_team_gets_404(ro_api, other_api, db_check, app_check):
    body = {"depends_on": [str(db_check.id)]}
    assert ro_api.patch(f"{CHECKS}{app_check.unique_key}/", body).status_code == 403
    assert other_api.patch(f"{CHECKS}{app_check.id}/", body).status_code == 404
    assert other_api.get(f"{CHECKS}{app_check.id}/").status_code == 404
    assert not app_check.depends_on.exists()


def test_a_dependency_set_through_the_api_keeps_the_dependent_quiet(
    api, team, member, db_check, app_check, t0
):
    policy = {
        "name": "Everyone",
        "is_default": True,
        "steps": [{"wait": 600, "targets": [{"kind": "user", "id": member.id}]}],
    }
    assert api.post("/api/tocsin/v1/escalation-policies/", policy).status_code == 201
    assert depend(api, app_check, db_check).status_code == 200

    def fail(check, at):
        record_ping(
            ping=PingData(kind="fail", method="POST", exit_status=1),
            token=Check.objects.get(id=check.id).ping_token,
            now=at,
        )
        sweep_due_checks(now=at + timedelta(seconds=1))

    fail(db_check, t0)
    fail(app_check, t0 + timedelta(seconds=10))
    later = t0 + timedelta(minutes=2)
    flush_due_groups(now=later)
    for delivery_id in due_delivery_ids(now=later):
        deliver(delivery_id=delivery_id, now=later, jitter=0)

    (email,) = mail.outbox
    assert email.to == [member.email] and "database" in email.subject
    assert "app" not in email.subject
    held = Incident.objects.get(owner=app_check)
    assert held.hold == Incident.Hold.SUPPRESSED
    assert held.suppressed_by == Incident.objects.get(owner=db_check)
