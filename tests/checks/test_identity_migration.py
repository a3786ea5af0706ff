"""Migration 0005: a check's ping token becomes its id, so that ping URLs handed out before the
migration keep working and are the check's uuid in the APIs. Runs the real migrations backwards
and forwards over rows written with the historical models."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.checks.models import Check, Flip, Ping
from apps.checks.pings import PingData, record_ping
from apps.escalation.models import Silence
from apps.incidents.models import Incident

BEFORE = [("checks", "0004_merge_evaluation_failure_and_checkdefaults")]
# After: every app at its latest migration (the graph's leaves), whatever was added since 0005;
# a fixed name here once left later migrations unapplied for the rest of the session.
AFTER = None
T = datetime(2026, 11, 1, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes() if targets is AFTER else targets)
    # Every app as migrated now (the other apps stay at their latest migration).
    executor.loader.build_graph()
    return executor._create_project_state(with_applied_migrations=True).apps


@pytest.fixture
def old_rows(transactional_db):
    """Two checks as the schema before 0005 held them: an id and a separate ping token, with a
    ping, a flip, an incident, a dependency and a silence naming them by id."""
    apps = migrate(BEFORE)
    team = apps.get_model("teams", "Team").objects.create(name="Ops", slug="ops")
    OldCheck = apps.get_model("checks", "Check")
    rows = {}
    for name in ("db", "backup"):
        check = OldCheck.objects.create(
            team=team, name=name, slug=name.upper(), ping_token=uuid.uuid4(), n_pings=1
        )
        apps.get_model("checks", "Ping").objects.create(
            owner=check, n=1, kind="success", received_at=T, method="GET"
        )
        apps.get_model("checks", "Flip").objects.create(
            owner=check, from_status="new", to_status="up", happened_at=T, reason="first_ping"
        )
        rows[name] = check
    rows["backup"].depends_on.add(rows["db"])
    apps.get_model("incidents", "Incident").objects.create(
        owner=rows["backup"], opened_at=T, kind="missed_heartbeat"
    )
    apps.get_model("escalation", "Silence").objects.create(
        team=team,
        starts_at=T,
        ends_at=T + timedelta(hours=1),
        matchers={"check_ids": [str(rows["backup"].id)], "tags": [], "environment": ""},
        comment="maintenance",
        created_at=T,
    )
    yield {name: (check.id, check.ping_token) for name, check in rows.items()}
    migrate(AFTER)


def test_every_check_takes_its_ping_token_as_id_and_its_history_follows(old_rows):
    migrate(AFTER)
    (db_old, db_token), (backup_old, backup_token) = old_rows["db"], old_rows["backup"]
    assert set(Check.objects.values_list("id", flat=True)) == {db_token, backup_token}
    backup = Check.objects.get(id=backup_token)
    assert list(backup.depends_on.values_list("id", flat=True)) == [db_token]
    assert Ping.objects.filter(owner_id=backup_token).count() == 1
    assert Flip.objects.filter(owner_id=db_token).count() == 1
    assert Incident.objects.get().owner_id == backup_token
    assert Silence.objects.get().matchers["check_ids"] == [str(backup_token)]
    assert not Check.objects.filter(id__in=[db_old, backup_old]).exists()
    # Slugs are lower case from now on.
    assert backup.slug == "backup"


def test_a_ping_url_handed_out_before_the_migration_still_records(old_rows):
    migrate(AFTER)
    _, token = old_rows["db"]
    assert record_ping(ping=PingData(kind="success", method="GET"), token=token)
    assert Check.objects.get(id=token).n_pings == 2
