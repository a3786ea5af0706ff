"""The escalation walker, with injected time. No database."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.escalation.policy import (
    PolicySnapshot,
    Position,
    StepSnapshot,
    Target,
    TargetKind,
    acknowledgment_expired,
    advance,
    escalate_now,
    next_wakeup,
    position_from_json,
    position_to_json,
    snapshot_from_json,
    snapshot_to_json,
    start,
)

T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
ALICE, BOB, CAROL = (
    Target(TargetKind.USER, 1),
    Target(TargetKind.USER, 2),
    Target(TargetKind.USER, 3),
)
SLACK = Target(TargetKind.CHANNEL, 10)
ONCALL = Target(TargetKind.ROTATION, 20)

POLICY = PolicySnapshot(
    steps=(
        StepSnapshot(wait=10 * MIN, targets=(ALICE, SLACK)),
        StepSnapshot(wait=15 * MIN, targets=(ONCALL,)),
        StepSnapshot(wait=30 * MIN, targets=(CAROL,), severities=frozenset({"critical"})),
    ),
    repeat=1,
    reminder_interval=60 * MIN,
    ack_timeout=30 * MIN,
)


def walk(policy, severity, minutes):
    """Advance one minute at a time up to `minutes`; return (minute, round, step) fired."""
    position, fired = start(policy, T0), []
    for minute in range(minutes + 1):
        result = advance(policy, position, severity=severity, now=T0 + minute * MIN)
        position = result.position
        fired += [(minute, f.round, f.step) for f in result.firings]
    return fired, position


def test_walks_all_steps_and_repeats_then_reminds():
    fired, position = walk(POLICY, "critical", 300)
    assert fired[:6] == [
        (0, 0, 0),
        (10, 0, 1),
        (25, 0, 2),
        (55, 1, 0),
        (65, 1, 1),
        (80, 1, 2),
    ]
    reminders = [f for f in fired if f[2] == -1]
    assert [m for m, _, _ in reminders] == [140, 200, 260]
    assert position.finished


def test_step_limited_to_other_severities_is_skipped_but_its_wait_counts():
    fired, _ = walk(POLICY, "warning", 60)
    assert fired == [(0, 0, 0), (10, 0, 1), (55, 1, 0)]


def test_a_late_sweep_fires_every_missed_step_once_in_order():
    result = advance(POLICY, start(POLICY, T0), severity="critical", now=T0 + 30 * MIN)
    assert [(f.round, f.step, f.at) for f in result.firings] == [
        (0, 0, T0),
        (0, 1, T0 + 10 * MIN),
        (0, 2, T0 + 25 * MIN),
    ]
    again = advance(POLICY, result.position, severity="critical", now=T0 + 30 * MIN)
    assert again.firings == []


def test_policy_limited_to_severities_does_nothing_for_others():
    policy = PolicySnapshot(steps=POLICY.steps, severities=frozenset({"critical"}))
    result = advance(policy, start(policy, T0), severity="info", now=T0 + 600 * MIN)
    assert result.firings == [] and result.position.finished


def test_no_repeat_and_no_reminders_finishes_quietly():
    policy = PolicySnapshot(steps=(StepSnapshot(wait=5 * MIN, targets=(ALICE,)),))
    fired, position = walk(policy, "warning", 120)
    assert fired == [(0, 0, 0)]
    assert position.finished and position.due_at is None


def test_escalate_now_skips_the_wait():
    position = advance(POLICY, start(POLICY, T0), severity="critical", now=T0).position
    position = escalate_now(POLICY, position, now=T0 + 2 * MIN)
    result = advance(POLICY, position, severity="critical", now=T0 + 2 * MIN)
    assert [(f.step, f.at) for f in result.firings] == [(1, T0 + 2 * MIN)]


def test_reminders_target_everyone_reached_once():
    fired = advance(
        POLICY, Position(finished=True, due_at=T0, round=1), severity="critical", now=T0
    ).firings
    assert fired[0].is_reminder
    assert fired[0].targets == (ALICE, SLACK, ONCALL, CAROL)


@pytest.mark.parametrize(
    ("minutes_after_ack", "expired"), [(29, False), (30, True)], ids=["before", "at-timeout"]
)
def test_acknowledgment_timeout(minutes_after_ack, expired):
    assert acknowledgment_expired(POLICY, T0, T0 + minutes_after_ack * MIN) is expired


def test_next_wakeup_after_acknowledgment_is_the_timeout():
    assert next_wakeup(POLICY, Position(due_at=T0), T0 + MIN) == T0 + 31 * MIN
    policy = PolicySnapshot(steps=POLICY.steps)
    assert next_wakeup(policy, Position(due_at=T0), T0 + MIN) is None
    assert next_wakeup(policy, Position(due_at=T0), None) == T0


def test_empty_policy_is_finished_at_once():
    assert start(PolicySnapshot(steps=()), T0).finished


def test_snapshots_and_positions_round_trip():
    assert snapshot_from_json(snapshot_to_json(POLICY)) == POLICY
    position = Position(round=1, step=2, due_at=T0, finished=False, reminders=3)
    assert position_from_json(position_to_json(position)) == position
