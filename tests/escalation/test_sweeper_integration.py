"""Escalation driven by the real detection path: pings, the check sweeper opening and resolving
incidents in its own transaction, and the escalation sweep. db-health goes down, the nightly
report that depends on it fails too and is held back; db-health recovers while the report is
still failing, and the report is notified then."""

from datetime import timedelta

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.escalation.engine import escalate_due_incidents
from apps.incidents.models import Incident
from tests.factories import CheckFactory

from .helpers import make_policy, owed, timeline

MIN = timedelta(minutes=1)


def ping(check, at, kind="success"):
    assert record_ping(ping=PingData(kind=kind, method="POST"), token=check.ping_token, now=at)


def test_dependency_held_back_and_released_through_the_real_sweeper(
    team, owner, member, settings, t0
):
    settings.DEPENDENCY_RELEASE_DELAY = timedelta(minutes=2)
    make_policy(team, [(15, [("user", owner.id)]), (15, [("user", member.id)])], is_default=True)
    db = CheckFactory(team=team, name="db-health", slug="db-health", period=timedelta(hours=1))
    report = CheckFactory(team=team, name="nightly-report", slug="nightly-report")
    report.depends_on.add(db)
    ping(db, t0)
    ping(report, t0)
    sweep_due_checks(now=t0)

    # db-health fails; the report fails a minute later, because of it.
    ping(db, t0 + 10 * MIN, kind="fail")
    sweep_due_checks(now=t0 + 10 * MIN)
    ping(report, t0 + 11 * MIN, kind="fail")
    sweep_due_checks(now=t0 + 11 * MIN)
    parent = Incident.objects.get(owner=db)
    child = Incident.objects.get(owner=report)
    assert owed(parent) == [("down", 0, 0, f"user:{owner.id}")]
    assert child.hold == Incident.Hold.SUPPRESSED and child.suppressed_by == parent
    assert owed(child) == []
    escalate_due_incidents(now=t0 + 30 * MIN)
    assert owed(child) == []  # still held while the parent is down

    # db-health recovers; the report does not.
    ping(db, t0 + 40 * MIN)
    sweep_due_checks(now=t0 + 40 * MIN)
    parent.refresh_from_db()
    assert parent.state == Incident.State.RESOLVED
    assert ("resolved", 0, 0, f"user:{owner.id}") in owed(parent)
    escalate_due_incidents(now=t0 + 42 * MIN)
    assert owed(child) == [("down", 0, 0, f"user:{owner.id}")]
    assert timeline(child)[:3] == ["opened", "suppressed", "released"]

    # The report recovers: resolved, and whoever was told hears of it.
    ping(report, t0 + 50 * MIN)
    sweep_due_checks(now=t0 + 50 * MIN)
    child.refresh_from_db()
    assert child.state == Incident.State.RESOLVED and child.next_escalation_at is None
    assert ("resolved", 0, 0, f"user:{owner.id}") in owed(child)
    assert not any(target == f"user:{member.id}" for *_, target in owed(child))
