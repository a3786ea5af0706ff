"""The escalation engine on a real database, with injected time: policies walked through all
their steps and repeats, reminders, acknowledgment and its timeout, "not me", rotations,
severity routing and the frozen policy copy. What counts is what is owed to whom (outbox rows
written through apps.notifications.dispatch) and the incident's timeline."""

from datetime import date, time, timedelta

import pytest

from apps.escalation.actions import EscalationActionError
from apps.escalation.actions import escalate_incident_now as not_me
from apps.escalation.engine import escalate_due_incidents
from apps.escalation.models import EscalationStep, Rotation, RotationMember, RotationOverride
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import (
    acknowledge_incident,
    raise_due_severities,
    resolve_incident,
    resolve_open_incident,
)
from apps.teams.models import Membership
from tests.factories import CheckFactory, MembershipFactory

from .helpers import events_of, make_channel, make_policy, open_for, owed, timeline

MIN = timedelta(minutes=1)


@pytest.fixture
def chat(team):
    return make_channel(team)


@pytest.fixture
def two_steps(team, owner, chat):
    """alice, then 10 min later the chat channel, then 20 min later round two; once more."""
    return make_policy(
        team, [(10, [("user", owner.id)]), (20, [("channel", chat.id)])], repeat=1, is_default=True
    )


def sweep(now):
    return escalate_due_incidents(now=now)


def test_without_a_policy_every_team_member_is_told_once(check, owner, member, viewer, t0):
    incident = open_for(check, t0)
    targets = {f"user:{u.id}" for u in (owner, member, viewer)}
    assert owed(incident) == sorted(("down", 0, 0, t) for t in targets)
    assert incident.next_escalation_at is None
    sweep(t0 + timedelta(days=1))
    assert len(owed(incident)) == 3
    assert timeline(incident) == ["opened", "escalated"]


def test_policy_walks_every_step_and_repeat_then_stops(check, owner, chat, two_steps, t0):
    incident = open_for(check, t0)
    alice, room = f"user:{owner.id}", f"channel:{chat.id}"
    assert owed(incident) == [("down", 0, 0, alice)]
    assert incident.next_escalation_at == t0 + 10 * MIN

    sweep(t0 + 9 * MIN)
    assert len(owed(incident)) == 1
    sweep(t0 + 10 * MIN)
    assert owed(incident, event="escalation") == [("escalation", 0, 1, room)]
    sweep(t0 + 30 * MIN)
    sweep(t0 + 40 * MIN)
    assert owed(incident) == [
        ("down", 0, 0, alice),
        ("escalation", 0, 1, room),
        ("escalation", 1, 0, alice),
        ("escalation", 1, 1, room),
    ]
    incident.refresh_from_db()
    assert incident.next_escalation_at is None  # no reminders configured: done
    sweep(t0 + timedelta(days=2))
    assert len(owed(incident)) == 4
    steps = [(e["step"], e["round"]) for e in events_of(incident, "escalated")]
    assert steps == [(1, 0), (2, 0), (1, 1), (2, 1)]


def test_sweeps_repeated_at_the_same_moment_fire_nothing_twice(check, two_steps, t0):
    incident = open_for(check, t0)
    for _ in range(3):
        sweep(t0 + 10 * MIN)
    assert len(owed(incident)) == 2
    assert len(events_of(incident, "escalated")) == 2


def test_a_late_sweep_catches_up_on_every_step_it_missed(check, two_steps, t0):
    incident = open_for(check, t0)
    sweep(t0 + 45 * MIN)
    assert len(owed(incident)) == 4


def test_reminders_follow_the_last_repeat_at_their_interval(check, owner, chat, team, t0):
    make_policy(
        team,
        [(10, [("user", owner.id)]), (20, [("channel", chat.id)])],
        is_default=True,
        reminder_interval=timedelta(hours=1),
    )
    incident = open_for(check, t0)
    sweep(t0 + 10 * MIN)
    incident.refresh_from_db()
    # The last step's wait is not added to the first reminder's interval.
    assert incident.next_escalation_at == t0 + 70 * MIN
    sweep(t0 + 69 * MIN)
    assert owed(incident, event="reminder") == []
    sweep(t0 + 70 * MIN)
    sweep(t0 + 100 * MIN)  # never more often than the interval
    sweep(t0 + 130 * MIN)
    reminders = owed(incident, event="reminder")
    assert reminders == sorted(
        [("reminder", 0, n, f"user:{owner.id}") for n in (1, 2)]
        + [("reminder", 0, n, f"channel:{chat.id}") for n in (1, 2)]
    )
    assert len(events_of(incident, "reminded")) == 2


def test_acknowledgment_stops_steps_and_reminders(check, owner, member, team, chat, t0):
    make_policy(
        team,
        [(10, [("user", owner.id)]), (20, [("channel", chat.id)])],
        is_default=True,
        reminder_interval=timedelta(minutes=30),
    )
    incident = open_for(check, t0)
    acknowledge_incident(incident_id=incident.id, user=member, now=t0 + 5 * MIN)
    incident.refresh_from_db()
    assert incident.next_escalation_at is None
    sweep(t0 + timedelta(days=1))
    assert owed(incident, event="escalation") == []
    assert owed(incident, event="reminder") == []


def test_acknowledgment_timeout_retriggers_from_step_zero(check, owner, member, team, chat, t0):
    make_policy(
        team,
        [(10, [("user", owner.id)]), (20, [("channel", chat.id)])],
        is_default=True,
        repeat=1,
        ack_timeout=timedelta(minutes=30),
    )
    incident = open_for(check, t0)
    acknowledge_incident(incident_id=incident.id, user=member, now=t0 + 5 * MIN)
    incident.refresh_from_db()
    assert incident.next_escalation_at == t0 + 35 * MIN
    sweep(t0 + 34 * MIN)
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    sweep(t0 + 35 * MIN)
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED
    # A new run: its rounds come after the first run's (round 2 = run 1, round 0), so nothing
    # collides with what was already sent.
    assert owed(incident, event="retriggered") == [("retriggered", 2, 0, f"user:{owner.id}")]
    sweep(t0 + 45 * MIN)
    assert ("escalation", 2, 1, f"channel:{chat.id}") in owed(incident)
    assert "retriggered" in timeline(incident)
    # Acknowledged again: stopped again, with a new timeout.
    acknowledge_incident(incident_id=incident.id, user=member, now=t0 + 50 * MIN)
    incident.refresh_from_db()
    assert incident.next_escalation_at == t0 + 80 * MIN


def test_resolved_incident_is_never_escalated_and_told_resolved(check, owner, two_steps, t0):
    incident = open_for(check, t0)
    resolve_incident(incident_id=incident.id, user=owner, now=t0 + 2 * MIN)
    incident.refresh_from_db()
    assert incident.next_escalation_at is None
    sweep(t0 + timedelta(hours=2))
    assert owed(incident) == [
        ("down", 0, 0, f"user:{owner.id}"),
        ("resolved", 0, 0, f"user:{owner.id}"),
    ]


def test_recovery_resolves_and_tells_only_whoever_was_told(check, owner, member, chat, team, t0):
    make_policy(team, [(10, [("channel", chat.id)]), (10, [("user", member.id)])], is_default=True)
    incident = open_for(check, t0)
    resolve_open_incident(
        check=check,
        resolved_at=t0 + 3 * MIN,
        now=t0 + 3 * MIN,
        resolution=Incident.Resolution.RECOVERED,
    )
    assert owed(incident, event="resolved") == [("resolved", 0, 0, f"channel:{chat.id}")]


def test_not_me_fires_the_next_step_now(check, owner, member, chat, two_steps, t0):
    incident = open_for(check, t0)
    not_me(incident_id=incident.id, user=owner, now=t0 + 2 * MIN)
    assert ("escalation", 0, 1, f"channel:{chat.id}") in owed(incident)
    incident.refresh_from_db()
    # The step after it waits its own wait from now.
    assert incident.next_escalation_at == t0 + 22 * MIN
    asked = events_of(incident, IncidentEvent.Kind.ESCALATE_REQUESTED)
    assert asked[0]["by"] == "alice" and asked[0]["next_step"] == 2


def test_not_me_is_refused_when_there_is_no_further_step(check, owner, team, t0):
    make_policy(team, [(10, [("user", owner.id)])], is_default=True)
    incident = open_for(check, t0)
    sweep(t0 + 10 * MIN)
    with pytest.raises(EscalationActionError, match="no further step"):
        not_me(incident_id=incident.id, user=owner, now=t0 + 11 * MIN)


def test_not_me_is_refused_after_acknowledgment(check, owner, two_steps, t0):
    incident = open_for(check, t0)
    acknowledge_incident(incident_id=incident.id, user=owner, now=t0 + MIN)
    with pytest.raises(EscalationActionError, match="acknowledged"):
        not_me(incident_id=incident.id, user=owner, now=t0 + 2 * MIN)


def test_rotation_target_is_whoever_is_on_call_when_the_step_fires(check, team, owner, member, t0):
    rotation = Rotation.objects.create(
        team=team,
        name="Primary on-call",
        timezone="Europe/Riga",
        cadence=Rotation.Cadence.DAILY,
        handoff_time=time(9, 0),
        start_date=date(2026, 11, 1),
    )
    RotationMember.objects.create(rotation=rotation, user=owner, order=0)
    RotationMember.objects.create(rotation=rotation, user=member, order=1)
    # t0 is 05:00 in Riga on 2 November: the 1 November shift (alice) is still running; the step
    # after it fires at 10:00 Riga, after the handoff to bob.
    make_policy(
        team,
        [(300, [("rotation", rotation.id)]), (10, [("rotation", rotation.id)])],
        is_default=True,
    )
    incident = open_for(check, t0)
    assert owed(incident) == [("down", 0, 0, f"user:{owner.id}")]
    sweep(t0 + 300 * MIN)
    assert ("escalation", 0, 1, f"user:{member.id}") in owed(incident)


def test_rotation_override_wins_and_an_empty_rotation_is_on_the_timeline(
    check, team, owner, member, t0
):
    covered = Rotation.objects.create(
        team=team, name="A", handoff_time=time(9), start_date=date(2026, 11, 1)
    )
    RotationMember.objects.create(rotation=covered, user=owner)
    RotationOverride.objects.create(
        rotation=covered, user=member, starts_at=t0 - MIN, ends_at=t0 + MIN
    )
    empty = Rotation.objects.create(
        team=team, name="B", handoff_time=time(9), start_date=date(2026, 11, 1)
    )
    make_policy(team, [(10, [("rotation", covered.id), ("rotation", empty.id)])], is_default=True)
    incident = open_for(check, t0)
    assert owed(incident) == [("down", 0, 0, f"user:{member.id}")]
    assert events_of(incident, "nobody_on_call")[0]["rotation"] == empty.id


def test_step_limited_to_critical_is_skipped_for_a_warning(check, team, owner, member, t0):
    make_policy(
        team,
        [(10, [("user", owner.id)], "critical"), (10, [("user", member.id)])],
        is_default=True,
    )
    incident = open_for(check, t0)  # the check's severity is warning
    assert owed(incident) == []
    sweep(t0 + 10 * MIN)
    assert owed(incident) == [("down", 0, 1, f"user:{member.id}")]


def test_policy_for_criticals_only_starts_when_severity_is_raised(team, owner, t0):
    policy = make_policy(team, [(10, [("user", owner.id)])], severities="critical")
    check = CheckFactory(
        team=team,
        escalation_policy=policy,
        severity="warning",
        severity_raise_after=timedelta(hours=1),
        severity_raise_to="critical",
    )
    incident = open_for(check, t0)
    assert owed(incident) == []
    assert events_of(incident, "policy_skipped")[0]["severity"] == "warning"
    raise_due_severities(now=t0 + timedelta(hours=1))
    assert owed(incident) == [("down", 0, 0, f"user:{owner.id}")]


def test_editing_the_policy_does_not_change_an_escalation_under_way(
    check, owner, member, chat, two_steps, t0
):
    incident = open_for(check, t0)
    step = EscalationStep.objects.get(policy=two_steps, order=1)
    step.targets = [{"kind": "user", "id": member.id}]
    step.save()
    sweep(t0 + 10 * MIN)
    assert ("escalation", 0, 1, f"channel:{chat.id}") in owed(incident)
    assert not any(target == f"user:{member.id}" for *_, target in owed(incident))
    assert incident.policy_name == "Primary"


def test_check_policy_wins_over_the_team_default(team, owner, member, t0):
    make_policy(team, [(10, [("user", owner.id)])], name="Default", is_default=True)
    own = make_policy(team, [(10, [("user", member.id)])], name="Own")
    check = CheckFactory(team=team, escalation_policy=own)
    incident = open_for(check, t0)
    assert owed(incident) == [("down", 0, 0, f"user:{member.id}")]


def test_targets_who_left_the_team_or_of_another_team_are_not_told(
    check, team, owner, member, outsider, t0
):
    foreign = make_channel(outsider.memberships.get().team, name="their-chat")
    make_policy(
        team,
        [(10, [("user", owner.id), ("user", outsider.id), ("channel", foreign.id)])],
        is_default=True,
    )
    Membership.objects.filter(user=owner).delete()
    MembershipFactory(team=team, user__username="newcomer")
    incident = open_for(check, t0)
    assert owed(incident) == []
    assert events_of(incident, "escalated")[0]["step"] == 1
