"""Notifications held back and let go: dependencies (suppressed while a parent check's incident
is open, released after it recovers), silences (recorded but not notified; notified late when
the silence ends or is expired early), maintenance windows across a daylight-saving change,
the silence-expiry reminder, and two concurrent escalation sweeps."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connections

from apps.escalation.actions import create_silence, expire_silence
from apps.escalation.engine import escalate_due_incidents
from apps.escalation.holds import matching_checks, silenced_now
from apps.escalation.hygiene import remind_expiring_silences
from apps.escalation.models import MaintenanceWindow, Silence
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import acknowledge_incident, resolve_open_incident
from apps.notifications.models import Notification
from tests.factories import CheckFactory

from .helpers import events_of, make_policy, open_for, owed, timeline

MIN = timedelta(minutes=1)


def sweep(now):
    return escalate_due_incidents(now=now)


def recover(check, at):
    resolve_open_incident(
        check=check, resolved_at=at, now=at, resolution=Incident.Resolution.RECOVERED
    )


@pytest.fixture
def db_health(team):
    return CheckFactory(team=team, name="db-health", slug="db-health", tags="db")


@pytest.fixture
def report(team, db_health):
    check = CheckFactory(team=team, name="nightly-report", slug="nightly-report", tags="reports")
    check.depends_on.add(db_health)
    return check


@pytest.fixture
def alice_policy(team, owner):
    return make_policy(team, [(10, [("user", owner.id)])], is_default=True, repeat=1)


# --- dependencies ---------------------------------------------------------------------------


def test_dependent_is_opened_suppressed_and_linked_while_the_parent_is_down(
    db_health, report, alice_policy, t0
):
    parent = open_for(db_health, t0)
    child = open_for(report, t0 + MIN)
    assert child.hold == Incident.Hold.SUPPRESSED
    assert child.suppressed_by == parent
    assert owed(child) == []
    assert events_of(child, "suppressed")[0]["parent_check"] == "db-health"
    sweep(t0 + timedelta(hours=3))
    assert owed(child) == []


def test_dependent_still_failing_after_the_parent_recovers_is_notified(
    db_health, report, alice_policy, owner, settings, t0
):
    settings.DEPENDENCY_RELEASE_DELAY = timedelta(minutes=2)
    open_for(db_health, t0)
    child = open_for(report, t0 + MIN)
    recover(db_health, t0 + 30 * MIN)
    child.refresh_from_db()
    assert child.next_escalation_at == t0 + 32 * MIN
    sweep(t0 + 31 * MIN)
    assert owed(child) == []
    sweep(t0 + 32 * MIN)
    assert owed(child) == [("down", 0, 0, f"user:{owner.id}")]
    child.refresh_from_db()
    assert child.hold == ""
    assert child.suppressed_by is not None  # the link stays, for the record
    assert timeline(child)[-2:] == ["released", "escalated"]
    sweep(t0 + 42 * MIN)  # and it escalates normally from then on
    assert ("escalation", 1, 0, f"user:{owner.id}") in owed(child)


def test_dependent_that_recovered_with_its_parent_is_never_notified(
    db_health, report, alice_policy, t0
):
    open_for(db_health, t0)
    child = open_for(report, t0 + MIN)
    recover(db_health, t0 + 30 * MIN)
    recover(report, t0 + 31 * MIN)
    sweep(t0 + timedelta(hours=1))
    assert owed(child) == []


def test_dependent_waits_for_its_parents_to_settle_before_anyone_is_told(
    db_health, report, alice_policy, owner, settings, t0
):
    settings.SWEEP_INTERVAL = 5.0
    child = open_for(report, t0)
    assert owed(child) == [] and child.hold == ""
    assert child.next_escalation_at == t0 + timedelta(seconds=10)
    sweep(t0 + timedelta(seconds=9))
    assert owed(child) == []
    sweep(t0 + timedelta(seconds=10))
    # Nothing else went down: the dependent is an ordinary incident, timed from its opening.
    assert owed(child) == [("down", 0, 0, f"user:{owner.id}")]
    child.refresh_from_db()
    assert child.next_escalation_at == t0 + 10 * MIN


def test_parent_down_in_the_same_sweep_after_its_dependents_keeps_them_quiet(
    team, db_health, alice_policy, t0
):
    # The sweep takes checks in deadline order: fifty dependents first, then their parent.
    dependents = [
        CheckFactory(team=team, name=f"report-{i}", slug=f"report-{i}") for i in range(50)
    ]
    for check in dependents:
        check.depends_on.add(db_health)
    children = [open_for(check, t0) for check in dependents]
    parent = open_for(db_health, t0 + timedelta(seconds=1))
    sweep(t0 + timedelta(hours=2))
    assert Notification.objects.exclude(incident=parent).count() == 0
    for child in children:
        child.refresh_from_db()
        assert (child.hold, child.suppressed_by) == (Incident.Hold.SUPPRESSED, parent)


def test_parent_going_down_later_holds_a_dependent_already_escalating(
    db_health, report, alice_policy, owner, t0
):
    child = open_for(report, t0)
    sweep(t0 + MIN)
    assert owed(child) == [("down", 0, 0, f"user:{owner.id}")]
    parent = open_for(db_health, t0 + 2 * MIN)
    child.refresh_from_db()
    assert child.hold == Incident.Hold.SUPPRESSED and child.suppressed_by == parent
    sweep(t0 + timedelta(hours=1))
    assert len(owed(child)) == 1


def test_release_waits_for_a_second_parent_still_down(team, db_health, report, alice_policy, t0):
    queue = CheckFactory(team=team, name="queue", slug="queue")
    report.depends_on.add(queue)
    open_for(db_health, t0)
    second = open_for(queue, t0)
    child = open_for(report, t0 + MIN)
    recover(db_health, t0 + 10 * MIN)
    sweep(t0 + timedelta(hours=1))
    child.refresh_from_db()
    assert child.hold == Incident.Hold.SUPPRESSED and child.suppressed_by == second
    assert owed(child) == []


# --- silences ---------------------------------------------------------------------------------


def silence(team, user, start, end, **matchers):
    return create_silence(
        team_id=team.id,
        starts_at=start,
        ends_at=end,
        matchers=matchers,
        user=user,
        comment="db migration",
        now=start,
    )


def test_incident_under_a_silence_is_recorded_but_not_notified_until_it_ends(
    team, check, owner, alice_policy, t0
):
    held = silence(team, owner, t0 - MIN, t0 + timedelta(hours=1), tags=["backup"])
    incident = open_for(check, t0)
    assert incident.hold == Incident.Hold.SILENCED and incident.silenced_by == held
    assert owed(incident) == []
    assert events_of(incident, "silenced")[0]["silence"] == held.id
    assert incident.next_escalation_at == t0 + timedelta(hours=1)
    sweep(t0 + 59 * MIN)
    assert owed(incident) == []
    sweep(t0 + 60 * MIN)
    assert owed(incident) == [("unsilenced", 0, 0, f"user:{owner.id}")]
    assert "unsilenced" in timeline(incident)


def test_silence_expired_early_notifies_at_the_next_sweep(team, check, owner, alice_policy, t0):
    held = silence(team, owner, t0 - MIN, t0 + timedelta(hours=4), whole_team=True)
    incident = open_for(check, t0)
    expire_silence(silence=held, user=owner, now=t0 + 20 * MIN)
    held.refresh_from_db()
    assert held.expired_at == t0 + 20 * MIN and held.expired_by == owner
    sweep(t0 + 20 * MIN)
    assert owed(incident) == [("unsilenced", 0, 0, f"user:{owner.id}")]


def test_silence_acknowledged_meanwhile_is_not_notified_when_it_ends(
    team, check, owner, member, alice_policy, t0
):
    silence(team, owner, t0 - MIN, t0 + timedelta(hours=1), check_ids=[str(check.id)])
    incident = open_for(check, t0)
    acknowledge_incident(incident_id=incident.id, user=member, now=t0 + 5 * MIN)
    sweep(t0 + timedelta(hours=2))
    assert owed(incident) == []


def test_silence_created_mid_escalation_holds_the_next_steps(team, check, owner, alice_policy, t0):
    incident = open_for(check, t0)
    assert len(owed(incident)) == 1
    silence(team, owner, t0 + 5 * MIN, t0 + timedelta(hours=1), environment="production")
    incident.refresh_from_db()
    assert incident.hold == Incident.Hold.SILENCED
    sweep(t0 + 30 * MIN)
    assert len(owed(incident)) == 1
    sweep(t0 + 60 * MIN)
    # It carries on where it was: the next step, once (not every step missed meanwhile).
    assert owed(incident)[1:] == [("escalation", 1, 0, f"user:{owner.id}")]


def test_future_silence_holds_nothing_before_it_starts(team, check, owner, alice_policy, t0):
    silence(team, owner, t0 + timedelta(hours=1), t0 + timedelta(hours=2), whole_team=True)
    incident = open_for(check, t0)
    assert incident.hold == ""
    assert len(owed(incident)) == 1


@pytest.mark.parametrize(
    ("matchers", "matched"),
    [
        ({"whole_team": True}, {"nightly-backup", "db-health", "staging-job"}),
        ({"tags": ["backup"]}, {"nightly-backup"}),
        ({"environment": "staging"}, {"staging-job"}),
        ({"tags": ["db", "backup"], "environment": "production"}, {"nightly-backup", "db-health"}),
        ({"environment": "production", "tags": ["nothing"]}, set()),
        ({}, set()),
    ],
    ids=["whole-team", "tag", "environment", "tags-and-environment", "narrowed-away", "empty"],
)
def test_silence_matchers(team, check, db_health, other_team, matchers, matched):
    CheckFactory(
        team=team, name="staging-job", slug="staging-job", environment="staging", tags="etl"
    )
    CheckFactory(team=other_team, name="theirs", slug="theirs", tags="backup db")
    found = {c.name for c in matching_checks(team.id, matchers)}
    assert found == matched


def test_silence_of_one_team_never_covers_another_teams_check(
    team, owner, other_team, outsider, t0
):
    theirs = CheckFactory(team=other_team)
    make_policy(other_team, [(10, [("user", outsider.id)])], is_default=True)
    silence(team, owner, t0 - MIN, t0 + timedelta(hours=1), check_ids=[str(theirs.id)])
    incident = open_for(theirs, t0)
    assert incident.hold == "" and len(owed(incident)) == 1


def test_silenced_right_now_lists_covered_checks(team, check, db_health, owner, t0):
    held = silence(team, owner, t0 - MIN, t0 + timedelta(hours=1), tags=["db"])
    listed = silenced_now(team.id, t0)
    assert [(c.name, cover.silence) for c, cover in listed] == [("db-health", held)]
    assert silenced_now(team.id, t0 + timedelta(hours=1)) == []


# --- maintenance windows ----------------------------------------------------------------------


def test_maintenance_window_follows_local_time_across_a_dst_change(
    team, check, owner, alice_policy
):
    # Every night 02:00-04:00 in Riga. On 29 March 2026 clocks go from 03:00 to 04:00 (EET to
    # EEST): the window that night is 00:00-02:00 UTC; the night after it is 23:00-01:00 UTC.
    MaintenanceWindow.objects.create(
        team=team,
        name="nightly maintenance",
        cron="0 2 * * *",
        duration=timedelta(hours=2),
        timezone="Europe/Riga",
        matchers={"whole_team": True},
        created_by=owner,
        comment="vendor patching",
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    before = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    incident = open_for(check, before)
    assert incident.hold == Incident.Hold.SILENCED
    assert incident.next_escalation_at == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    sweep(datetime(2026, 3, 29, 2, 0, tzinfo=UTC))
    assert owed(incident) == [("unsilenced", 0, 0, f"user:{owner.id}")]
    recover(check, datetime(2026, 3, 29, 3, 0, tzinfo=UTC))

    # 23:30 UTC on 29 March is 02:30 summer time: inside the next night's window...
    late = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)
    second = open_for(check, late)
    assert second.hold == Incident.Hold.SILENCED
    assert second.next_escalation_at == datetime(2026, 3, 30, 1, 0, tzinfo=UTC)
    recover(check, late + MIN)
    # ...while 23:30 UTC the night before was 01:30 winter time: outside it.
    third = open_for(check, datetime(2026, 3, 28, 23, 30, tzinfo=UTC))
    assert third.hold == ""
    assert owed(third) == [("down", 0, 0, f"user:{owner.id}")]


# --- silence hygiene --------------------------------------------------------------------------


def test_creator_is_reminded_once_before_a_silence_ends_while_its_checks_fail(
    team, check, owner, alice_policy, settings, t0
):
    settings.SILENCE_EXPIRY_REMINDER = timedelta(minutes=15)
    held = silence(team, owner, t0 - MIN, t0 + timedelta(hours=1), check_ids=[str(check.id)])
    open_for(check, t0)
    assert remind_expiring_silences(now=t0 + 44 * MIN) == 0
    assert remind_expiring_silences(now=t0 + 46 * MIN) == 1
    assert remind_expiring_silences(now=t0 + 50 * MIN) == 0
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    assert "ends in 14 min" in message.subject
    assert "nightly-backup" in message.body and "db migration" in message.body
    held.refresh_from_db()
    assert held.expiry_reminded_at == t0 + 46 * MIN


def test_no_reminder_when_the_silenced_checks_recovered(team, check, owner, alice_policy, t0):
    silence(team, owner, t0 - MIN, t0 + timedelta(hours=1), check_ids=[str(check.id)])
    open_for(check, t0)
    recover(check, t0 + 10 * MIN)
    assert remind_expiring_silences(now=t0 + 50 * MIN) == 0
    assert mail.outbox == []


def test_no_reminder_for_a_silence_expired_early(team, check, owner, alice_policy, t0):
    held = silence(team, owner, t0 - MIN, t0 + timedelta(hours=1), check_ids=[str(check.id)])
    open_for(check, t0)
    expire_silence(silence=held, user=owner, now=t0 + 5 * MIN)
    assert remind_expiring_silences(now=t0 + 50 * MIN) == 0


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_fire_each_step_once(team, owner, member, t0):
    policy = make_policy(
        team,
        [(10, [("user", owner.id)]), (10, [("user", member.id)]), (10, [("team", team.id)])],
        is_default=True,
        repeat=1,
    )
    checks = [CheckFactory(team=team, escalation_policy=policy) for _ in range(40)]
    incidents = [open_for(check, t0) for check in checks]
    barrier = threading.Barrier(2)
    results, failures = [], []

    def run(now):
        try:
            barrier.wait(timeout=10)
            results.append(escalate_due_incidents(now=now, batch_size=3))
        except Exception as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    for minutes in (10, 20, 30, 40, 50):
        threads = [threading.Thread(target=run, args=(t0 + minutes * MIN,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert failures == []
    assert all(r.failed == 0 for r in results)
    # Every step fired once between them. On PostgreSQL both sweeps also did work (SKIP LOCKED
    # lets them run side by side, so otherwise the test proves nothing); SQLite takes one
    # writer at a time, so there one sweep may take every round, which is correct too.
    assert sum(r.processed for r in results) == len(incidents) * 5
    if connections["default"].vendor == "postgresql":
        assert sum(1 for r in results if r.processed) > 5
    for incident in incidents:
        fired = [(e["round"], e["step"]) for e in events_of(incident, "escalated")]
        assert fired == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    # Exactly one row per step and target: 2 rounds x (alice + bob + both of the team).
    assert Notification.objects.count() == len(incidents) * 2 * 4
    assert IncidentEvent.objects.filter(kind="escalated").count() == len(incidents) * 6
    assert not Silence.objects.exists()
