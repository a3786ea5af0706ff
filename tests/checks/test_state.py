"""The state machine, table-driven, with injected time. No database.

Each scenario is a timeline of pings (offset from T0, kind, facts) folded in order, then time is
advanced to `until`; we assert the final status and the sequence of status changes.
"""

from datetime import UTC, datetime, timedelta

import pytest

from apps.checks.rules import PingEvent, PingKind, Rules, Severity
from apps.checks.schedule import Schedule, ScheduleKind
from apps.checks.state import (
    EvalState,
    FlappingChanged,
    OpenRun,
    Reason,
    RunFinished,
    RunOutcome,
    Status,
    StatusChanged,
    advance_time,
    apply_ping,
    next_deadline,
    pause,
    state_from_json,
    state_to_json,
)

T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
S, MIN, HOUR, DAY = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
)
SKEW = 5 * S


DEFAULT_RULES = Rules()
FRESH = EvalState()


def fold(events, rules=DEFAULT_RULES, until=None, state=FRESH, blind_since=None):
    effects = []
    for n, (offset, kind, facts) in enumerate(events, start=1):
        ping = PingEvent(n=n, kind=PingKind(kind), received_at=T0 + offset, **facts)
        step = apply_ping(state, ping, rules, SKEW, blind_since)
        state, effects = step.state, effects + step.effects
    if until is not None:
        step = advance_time(state, rules, T0 + until, SKEW, blind_since)
        state, effects = step.state, effects + step.effects
    return state, effects


def changes(effects):
    return [(e.to_status.value, e.reason.value) for e in effects if isinstance(e, StatusChanged)]


def runs(effects):
    return [e for e in effects if isinstance(e, RunFinished)]


def ok(offset, **facts):
    return (offset, "success", facts)


def fail(offset, **facts):
    return (offset, "fail", facts)


def start(offset, **facts):
    return (offset, "start", facts)


def progress(offset, **facts):
    return (offset, "progress", facts)


SCENARIOS = [
    # id, events, rules, until, final status, status changes
    ("new-without-pings-stays-new", [], Rules(), 400 * DAY, "new", []),
    ("first-success-goes-up", [ok(0 * S)], Rules(), MIN, "up", [("up", "first_ping")]),
    (
        "on-time-pings-stay-up",
        [ok(0 * S), ok(DAY), ok(2 * DAY)],
        Rules(),
        2 * DAY + HOUR,
        "up",
        [("up", "first_ping")],
    ),
    (
        "late-after-period-plus-skew",
        [ok(0 * S)],
        Rules(),
        DAY + SKEW,
        "late",
        [("up", "first_ping"), ("late", "missed_deadline")],
    ),
    ("not-late-within-skew", [ok(0 * S)], Rules(), DAY + SKEW - S, "up", [("up", "first_ping")]),
    (
        "down-after-grace",
        [ok(0 * S)],
        Rules(),
        DAY + HOUR + SKEW,
        "down",
        [("up", "first_ping"), ("late", "missed_deadline"), ("down", "missed_heartbeat")],
    ),
    (
        "late-ping-recovers",
        [ok(0 * S), ok(DAY + 30 * MIN)],
        Rules(),
        DAY + 31 * MIN,
        "up",
        [("up", "first_ping"), ("late", "missed_deadline"), ("up", "success")],
    ),
    (
        "missed-then-recovered-in-one-late-sweep",
        [ok(0 * S), ok(3 * DAY)],
        Rules(),
        3 * DAY,
        "up",
        [
            ("up", "first_ping"),
            ("late", "missed_deadline"),
            ("down", "missed_heartbeat"),
            ("up", "recovered"),
        ],
    ),
    (
        "fail-goes-down",
        [ok(0 * S), fail(HOUR, exit_status=3)],
        Rules(),
        2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "failure_signal")],
    ),
    (
        "fail-threshold-3-needs-three-in-a-row",
        [fail(0 * S), fail(HOUR), ok(2 * HOUR), fail(3 * HOUR), fail(4 * HOUR)],
        Rules(failure_threshold=3),
        5 * HOUR,
        "up",
        [("up", "checked_in")],
    ),
    (
        "fail-threshold-3-reached",
        [ok(0 * S), fail(HOUR), fail(2 * HOUR), fail(3 * HOUR)],
        Rules(failure_threshold=3),
        4 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "failure_signal")],
    ),
    (
        "recovery-threshold-2-needs-two-successes",
        [fail(0 * S), ok(HOUR), fail(2 * HOUR), ok(3 * HOUR)],
        Rules(recovery_threshold=2),
        4 * HOUR,
        "down",
        [("down", "failure_signal")],
    ),
    (
        "recovery-threshold-2-reached",
        [fail(0 * S), ok(HOUR), ok(2 * HOUR)],
        Rules(recovery_threshold=2),
        3 * HOUR,
        "up",
        [("down", "failure_signal"), ("up", "recovered")],
    ),
    (
        "missed-tolerance-3-late-but-not-down-after-two-misses",
        [ok(0 * S)],
        Rules(schedule=Schedule(period=HOUR), grace=10 * MIN, missed_tolerance=3),
        2 * HOUR + 30 * MIN,
        "late",
        [("up", "first_ping"), ("late", "missed_deadline")],
    ),
    (
        "missed-tolerance-3-down-after-third-miss",
        [ok(0 * S)],
        Rules(schedule=Schedule(period=HOUR), grace=10 * MIN, missed_tolerance=3),
        3 * HOUR + 10 * MIN + SKEW,
        "down",
        [("up", "first_ping"), ("late", "missed_deadline"), ("down", "missed_heartbeat")],
    ),
    (
        "retrying-attempts-never-alert",
        [
            ok(0 * S),
            fail(HOUR, attempt=1, max_attempts=3),
            fail(HOUR + MIN, attempt=2, max_attempts=3),
        ],
        Rules(),
        2 * HOUR,
        "up",
        [("up", "first_ping")],
    ),
    (
        "final-attempt-failure-alerts",
        [
            ok(0 * S),
            fail(HOUR, attempt=1, max_attempts=2),
            fail(HOUR + MIN, attempt=2, max_attempts=2),
        ],
        Rules(),
        2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "failure_signal")],
    ),
    (
        "transient-failure-self-heals",
        [ok(0 * S), fail(HOUR, exit_status=75), ok(2 * HOUR)],
        Rules(),
        3 * HOUR,
        "up",
        [("up", "first_ping")],
    ),
    (
        "transient-failure-without-success-in-period-alerts",
        [ok(0 * S), fail(HOUR, exit_status=75)],
        Rules(),
        DAY + 2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "failure_signal")],
    ),
    (
        "transient-failures-beyond-limit-become-permanent",
        [ok(0 * S), *[fail(HOUR + i * MIN, exit_status=75) for i in range(4)]],
        Rules(transient_limit=3),
        2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "failure_signal")],
    ),
    (
        "partial-below-limit-no-alert",
        [ok(0 * S, processed=1000, failed=1)],
        Rules(partial_max_ratio=0.001),
        HOUR,
        "up",
        [("up", "first_ping")],
    ),
    (
        "partial-over-limit-alerts",
        [ok(0 * S), ok(HOUR, processed=1000, failed=2)],
        Rules(partial_max_ratio=0.001),
        2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "partial_over_limit")],
    ),
    (
        "partial-over-absolute-limit-alerts",
        [ok(0 * S), ok(HOUR, failed=11)],
        Rules(partial_max_failed=10),
        2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "partial_over_limit")],
    ),
    (
        "hung-run-fails",
        [ok(0 * S), start(HOUR)],
        Rules(max_runtime=30 * MIN),
        2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "hung")],
    ),
    (
        "run-within-max-runtime-is-fine",
        [ok(0 * S), start(HOUR), ok(HOUR + 20 * MIN)],
        Rules(max_runtime=30 * MIN),
        3 * HOUR,
        "up",
        [("up", "first_ping")],
    ),
    (
        "stalled-run-pinging-without-advancing-fails",
        [
            ok(0 * S),
            start(HOUR, run_id="r"),
            progress(HOUR + MIN, run_id="r", done=5),
            progress(HOUR + 6 * MIN, run_id="r", done=5),
            progress(HOUR + 9 * MIN, run_id="r", done=5),
        ],
        Rules(progress_timeout=10 * MIN),
        2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "stalled")],
    ),
    (
        "advancing-run-is-not-stalled",
        [
            ok(0 * S),
            start(HOUR, run_id="r"),
            progress(HOUR + 8 * MIN, run_id="r", done=5),
            progress(HOUR + 16 * MIN, run_id="r", done=9),
            ok(HOUR + 20 * MIN, run_id="r"),
        ],
        Rules(progress_timeout=10 * MIN),
        2 * HOUR,
        "up",
        [("up", "first_ping")],
    ),
    (
        "post-only-ignores-get",
        [ok(0 * S, method="POST"), ok(DAY - MIN, method="GET")],
        Rules(post_only=True),
        DAY + 2 * HOUR,
        "down",
        [("up", "first_ping"), ("late", "missed_deadline"), ("down", "missed_heartbeat")],
    ),
    (
        "failure-keyword-turns-success-into-failure",
        [ok(0 * S), ok(HOUR, body="Backup FAILED: disk full")],
        Rules(failure_keywords=("failed",)),
        2 * HOUR,
        "down",
        [("up", "first_ping"), ("down", "failure_signal")],
    ),
    (
        "success-keyword-required",
        [ok(0 * S, body="ALL OK"), ok(DAY - MIN, body="no marker here")],
        Rules(success_keywords=("all ok",)),
        DAY + 2 * HOUR,
        "down",
        [("up", "first_ping"), ("late", "missed_deadline"), ("down", "missed_heartbeat")],
    ),
    (
        "blind-window-marks-unknown-not-down",
        [ok(0 * S)],
        Rules(),
        3 * DAY,
        "unknown",
        [("up", "first_ping"), ("late", "missed_deadline"), ("unknown", "tocsin_blind")],
    ),
]


@pytest.mark.parametrize(
    ("events", "rules", "until", "status", "expected_changes"),
    [s[1:] for s in SCENARIOS],
    ids=[s[0] for s in SCENARIOS],
)
def test_scenario(events, rules, until, status, expected_changes):
    blind = T0 + DAY if "blind" in str(expected_changes) else None
    state, effects = fold(events, rules, until, blind_since=blind)
    assert state.status == status
    assert changes(effects) == expected_changes


def test_missed_heartbeat_is_backdated_to_its_deadline():
    _, effects = fold([ok(0 * S)], until=5 * DAY)
    down = next(e for e in effects if isinstance(e, StatusChanged) and e.to_status == Status.DOWN)
    assert down.at == T0 + DAY + SKEW + HOUR
    assert down.failure.expected_at == T0 + DAY


def test_failure_carries_exit_status_and_ping_number():
    _, effects = fold([ok(0 * S), fail(HOUR, exit_status=3)], until=2 * HOUR)
    down = changes_with_failure = [e for e in effects if isinstance(e, StatusChanged)][-1]
    assert changes_with_failure is down
    assert down.failure.exit_status == 3
    assert down.failure.n == 2


def test_overlapping_runs_are_paired_by_rid():
    events = [
        start(0 * S, run_id="a"),
        start(MIN, run_id="b"),
        ok(5 * MIN, run_id="a"),
        fail(7 * MIN, run_id="b", exit_status=2),
    ]
    _, effects = fold(events, Rules(failure_threshold=2))
    finished = runs(effects)
    assert [(r.rid, r.outcome, r.duration) for r in finished] == [
        ("a", RunOutcome.SUCCEEDED, 5 * MIN),
        ("b", RunOutcome.FAILED, 6 * MIN),
    ]


def test_finish_without_rid_closes_newest_open_run():
    _, effects = fold([start(0 * S), start(MIN), ok(3 * MIN)])
    assert [(r.started_at, r.ended_at) for r in runs(effects)] == [(T0 + MIN, T0 + 3 * MIN)]


def test_finish_without_start_is_a_run_of_unknown_duration():
    _, effects = fold([ok(0 * S)])
    (run,) = runs(effects)
    assert run.started_at is None and run.duration is None
    assert run.outcome == RunOutcome.SUCCEEDED


def test_success_after_retries_notes_the_retries():
    events = [
        fail(0 * S, attempt=1, max_attempts=3),
        fail(MIN, attempt=2, max_attempts=3),
        ok(2 * MIN),
    ]
    _, effects = fold(events)
    assert [r.outcome for r in runs(effects)] == [
        RunOutcome.RETRYING,
        RunOutcome.RETRYING,
        RunOutcome.SUCCEEDED,
    ]
    assert runs(effects)[-1].retries == 2


def test_hung_run_is_closed_as_hung_at_its_deadline():
    _, effects = fold([start(0 * S)], Rules(max_runtime=HOUR), until=2 * HOUR)
    (run,) = runs(effects)
    assert run.outcome == RunOutcome.HUNG
    assert run.ended_at == T0 + HOUR + SKEW


def test_flapping_sends_one_signal_and_ends_when_stable():
    rules = Rules(flap_threshold=3, flap_window=HOUR)
    events = [ok(0 * S), fail(MIN), ok(2 * MIN), fail(3 * MIN), ok(4 * MIN), fail(5 * MIN)]
    state, effects = fold(events, rules, until=30 * MIN)
    flapping = [e for e in effects if isinstance(e, FlappingChanged)]
    assert [f.is_flapping for f in flapping] == [True]
    assert state.is_flapping
    state, effects = fold([], rules, until=2 * HOUR, state=state)
    assert [e.is_flapping for e in effects if isinstance(e, FlappingChanged)] == [False]
    assert not state.is_flapping


def test_paused_check_ignores_deadlines_and_resumes_on_ping():
    state, _ = fold([ok(0 * S)])
    state = pause(state, Rules(), T0 + MIN).state
    assert state.status == Status.PAUSED
    state, effects = fold([], until=30 * DAY, state=state)
    assert state.status == Status.PAUSED and effects == []
    ping = PingEvent(n=9, kind=PingKind.SUCCESS, received_at=T0 + 31 * DAY)
    step = apply_ping(state, ping, Rules(), SKEW)
    assert step.state.status == Status.UP
    assert changes(step.effects) == [("up", "resumed")]


def test_manual_resume_keeps_paused_check_paused():
    state = pause(fold([ok(0 * S)])[0], Rules(), T0 + MIN).state
    ping = PingEvent(n=9, kind=PingKind.SUCCESS, received_at=T0 + HOUR)
    step = apply_ping(state, ping, Rules(manual_resume=True), SKEW)
    assert step.state.status == Status.PAUSED


def test_clock_offset_is_recorded_and_changes_no_period_deadline():
    rules = Rules(schedule=Schedule(period=HOUR), grace=10 * MIN)
    sent = T0 - 2 * MIN  # the job's clock runs two minutes behind the server's
    state, _ = fold([ok(0 * S, sent_at=sent)], rules)
    assert state.clock_offset == 2 * MIN
    assert state.recent_offsets == (2 * MIN,)
    # Lateness is judged from the arrival on the server's clock: no extra grace.
    assert next_deadline(state, rules, SKEW) == T0 + HOUR + SKEW


def test_a_slow_hosts_cron_check_is_expected_on_its_hosts_clock():
    rules = Rules(schedule=Schedule(kind=ScheduleKind.CRON, expression="0 * * * *"), grace=MIN)
    # T0 is 03:00: the host's 03:00 run pings at 03:02 by the server's clock.
    state, _ = fold([ok(2 * MIN, sent_at=T0)], rules)
    # Its 04:00 run comes at 04:02 by the server's clock.
    assert next_deadline(state, rules, SKEW) == T0 + HOUR + 2 * MIN + SKEW


def test_only_the_last_few_offsets_are_kept():
    pings = [ok(n * MIN, sent_at=T0 + n * MIN - n * S) for n in range(8)]
    state, _ = fold(pings)
    assert state.recent_offsets == tuple(n * S for n in range(3, 8))
    assert state.clock_offset == 7 * S


def test_cron_schedule_deadline():
    rules = Rules(schedule=Schedule(kind=ScheduleKind.CRON, expression="0 3 * * *"), grace=HOUR)
    state, effects = fold([ok(0 * S)], rules, until=DAY + HOUR + SKEW)  # T0 is 03:00 UTC
    assert state.status == Status.DOWN
    assert changes(effects)[-1] == ("down", "missed_heartbeat")


def test_severity_is_a_rule_setting():
    assert Rules().severity == Severity.WARNING


def test_state_round_trips_through_json():
    state = EvalState(
        status=Status.DOWN,
        last_checkin_at=T0,
        open_runs=(OpenRun(started_at=T0, start_n=3, rid="x", last_progress_at=T0 + MIN, done=4),),
        flip_times=(T0, T0 + MIN),
        is_flapping=True,
        clock_offset=timedelta(seconds=-2.5),
        recent_offsets=(timedelta(seconds=-3), timedelta(seconds=-2.5)),
        consecutive_failures=2,
    )
    state = fold([fail(HOUR, exit_status=9)], Rules(), state=state)[0]
    assert state_from_json("down", state_to_json(state)) == state


def test_reason_values_are_incident_kinds():
    from apps.incidents.models import Incident

    kinds = set(Incident.Kind.values)
    for reason in (
        Reason.MISSED_HEARTBEAT,
        Reason.FAILURE_SIGNAL,
        Reason.HUNG,
        Reason.STALLED,
        Reason.PARTIAL_OVER_LIMIT,
    ):
        assert reason.value in kinds
