"""The check state machine: pure rules, no ORM, no HTTP, no Celery. Every function takes time.

                 check-in                deadline passes              grace passes
        new ────────────────▶ up ─────────────────────▶ late ─────────────────────▶ down
                              ▲ ◀────── check-in ────────┘                            │
                              └──────── M successes in a row (recovery threshold) ────┘
        up/late ── N failed runs in a row (failure threshold): fail, hung, stalled,
                   partial over limit, transient that did not heal ──────────────────▶ down
        paused: ignored until a ping after the pause resumes it (unless manual resume).
        unknown: a deadline passed while Tocsin itself was blind (sweeper stopped or pings
                 stopped arriving); no alert, the check gets a fresh deadline instead.
        flapping: more than K up/down changes within a window; one alert, not one per flip.

The sweeper folds a check's new pings, in order, into its `EvalState` with `apply_ping`, and
lets time pass with `advance_time`; both return the new state and a list of effects (status
changes, runs opened and finished, pings classified, flapping started or ended) that the sweeper
writes. Deadlines that passed between two pings are applied at their own time, before the
later ping, so a late sweep reaches the same verdicts as a punctual one.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from .rules import Outcome, PingEvent, Rules, classify
from .schedule import (
    HOST_OFFSET_SAMPLES,
    NEVER,
    Deadlines,
    deadlines_after,
    host_clock,
    later_by,
)

MAX_OPEN_RUNS = 50


class Status(StrEnum):
    NEW = "new"
    UP = "up"
    LATE = "late"
    DOWN = "down"
    PAUSED = "paused"
    UNKNOWN = "unknown"


class Reason(StrEnum):
    FIRST_PING = "first_ping"
    SUCCESS = "success"
    RECOVERED = "recovered"
    RESUMED = "resumed"
    PAUSED = "paused"
    CHECKED_IN = "checked_in"  # alive, but not (yet) a success: a retry or a failure below N
    MISSED_DEADLINE = "missed_deadline"
    MISSED_HEARTBEAT = "missed_heartbeat"
    FAILURE_SIGNAL = "failure_signal"
    HUNG = "hung"
    STALLED = "stalled"
    PARTIAL_OVER_LIMIT = "partial_over_limit"
    TOCSIN_BLIND = "tocsin_blind"


# The reasons that take a check down are the incident kinds alerts speak of.
FAILURE_REASONS = frozenset(
    {
        Reason.MISSED_HEARTBEAT,
        Reason.FAILURE_SIGNAL,
        Reason.HUNG,
        Reason.STALLED,
        Reason.PARTIAL_OVER_LIMIT,
    }
)


class RunOutcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    RETRYING = "retrying"
    HUNG = "hung"
    STALLED = "stalled"


RUN_OUTCOME_FOR = {
    Outcome.SUCCESS: RunOutcome.SUCCEEDED,
    Outcome.PARTIAL: RunOutcome.PARTIAL,
    Outcome.FAIL: RunOutcome.FAILED,
    Outcome.PARTIAL_OVER_LIMIT: RunOutcome.FAILED,
    Outcome.TRANSIENT: RunOutcome.FAILED,
    Outcome.RETRYING: RunOutcome.RETRYING,
}


@dataclass(frozen=True)
class OpenRun:
    started_at: datetime
    start_n: int
    rid: str | None = None
    last_progress_at: datetime | None = None
    done: int | None = None
    total: int | None = None

    @property
    def progress_reference(self) -> datetime:
        return self.last_progress_at or self.started_at


@dataclass(frozen=True)
class Failure:
    """The failure that counts towards (or crossed) the threshold: what alerts will say."""

    reason: Reason
    at: datetime
    n: int | None = None  # the ping that reported it, if any
    exit_status: int | None = None
    run_started_at: datetime | None = None
    expected_at: datetime | None = None  # for a missed heartbeat: when the ping was due


@dataclass(frozen=True)
class EvalState:
    status: Status = Status.NEW
    last_checkin_at: datetime | None = None  # last finishing ping, the heartbeat reference
    paused_at: datetime | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    transient_streak: int = 0
    transient_since: datetime | None = None  # oldest transient failure not yet healed
    open_runs: tuple[OpenRun, ...] = ()
    flip_times: tuple[datetime, ...] = ()
    is_flapping: bool = False
    clock_offset: timedelta = timedelta(0)  # received_at - job's own sent_at, last observed
    # The offsets of the last few pings that carried the job's time, oldest first: the host's
    # clock as schedule.host_clock smooths it.
    recent_offsets: tuple[timedelta, ...] = ()
    last_failure: Failure | None = None
    pending_retries: int = 0  # failed attempts since the last finished run


# Effects: what the sweeper writes.
@dataclass(frozen=True)
class StatusChanged:
    from_status: Status
    to_status: Status
    at: datetime
    reason: Reason
    failure: Failure | None = None


@dataclass(frozen=True)
class PingClassified:
    n: int
    outcome: Outcome


@dataclass(frozen=True)
class RunStarted:
    rid: str | None
    started_at: datetime
    n: int


@dataclass(frozen=True)
class RunFinished:
    rid: str | None
    started_at: datetime | None  # None: a finish without a start, duration unknown
    ended_at: datetime
    outcome: RunOutcome
    start_n: int | None = None
    end_n: int | None = None
    exit_status: int | None = None
    retries: int = 0

    @property
    def duration(self) -> timedelta | None:
        return None if self.started_at is None else self.ended_at - self.started_at


@dataclass(frozen=True)
class FlappingChanged:
    is_flapping: bool
    at: datetime


@dataclass
class Step:
    """A state and the effects that led to it; threaded through one sweep of a check."""

    state: EvalState
    effects: list = field(default_factory=list)


# --- Entry points -------------------------------------------------------------------------


def apply_ping(
    state: EvalState,
    ping: PingEvent,
    rules: Rules,
    skew_allowance: timedelta,
    blind_since: datetime | None = None,
) -> Step:
    """Fold one ping into the state. Deadlines that passed before the ping are applied first."""
    step = advance_time(state, rules, ping.received_at, skew_allowance, blind_since)
    outcome = classify(ping, rules)
    step.effects.append(PingClassified(ping.n, outcome))
    state = step.state
    if ping.sent_at is not None:
        offset = ping.received_at - ping.sent_at
        recent = (*state.recent_offsets, offset)[-HOST_OFFSET_SAMPLES:]
        state = replace(state, clock_offset=offset, recent_offsets=recent)

    if state.status == Status.PAUSED:
        if rules.manual_resume or outcome in (Outcome.IGNORED, Outcome.LOG):
            step.state = state
            return step
        if state.paused_at is not None and ping.received_at <= state.paused_at:
            step.state = state
            return step

    if outcome == Outcome.START:
        state = _open_run(state, step, ping)
    elif outcome == Outcome.PROGRESS:
        state = _record_progress(state, ping)
    elif outcome.finishes_run:
        state = _finish(state, step, ping, outcome, rules)
    step.state = state
    return step


def advance_time(
    state: EvalState,
    rules: Rules,
    now: datetime,
    skew_allowance: timedelta,
    blind_since: datetime | None = None,
) -> Step:
    """Apply every deadline that has passed by `now`, in the order they fell due."""
    step = Step(state)
    if state.status == Status.PAUSED:
        return step
    for _ in range(2 * MAX_OPEN_RUNS + 10):  # each round settles one deadline
        due = _earliest_due(step.state, rules, skew_allowance)
        if due is None or due[0] > now:
            break
        at, action = due
        step.state = action(step.state, step, at, rules, skew_allowance, blind_since, now)
    return step


def next_deadline(state: EvalState, rules: Rules, skew_allowance: timedelta) -> datetime | None:
    """When the sweeper must look at this check again if no ping arrives (alert_after)."""
    due = _earliest_due(state, rules, skew_allowance)
    # A schedule with no future occurrence (a past one-shot OnCalendar) expects nothing more.
    return None if due is None or due[0] >= NEVER else due[0]


def heartbeat_deadlines(
    state: EvalState, rules: Rules, skew_allowance: timedelta
) -> Deadlines | None:
    if state.last_checkin_at is None:
        return None
    return deadlines_after(
        state.last_checkin_at,
        rules.schedule,
        rules.grace,
        skew_allowance,
        missed_tolerance=rules.missed_tolerance,
        host_shift=host_clock(state.recent_offsets).shift,
    )


def pause(state: EvalState, rules: Rules, now: datetime) -> Step:
    """Pause a check: sweeps ignore it, open runs and streaks are forgotten."""
    step = Step(state)
    if state.status != Status.PAUSED:
        state = _set_status(state, step, Status.PAUSED, now, Reason.PAUSED, None, rules)
        step.state = replace(
            state,
            paused_at=now,
            open_runs=(),
            consecutive_failures=0,
            consecutive_successes=0,
            transient_streak=0,
            transient_since=None,
            pending_retries=0,
        )
    return step


# --- Deadlines ------------------------------------------------------------------------------


def _earliest_due(state: EvalState, rules: Rules, skew: timedelta):
    """(when, action) of the earliest pending deadline, or None."""
    if state.status == Status.PAUSED:
        return None
    candidates = []
    for run in state.open_runs:
        if rules.max_runtime is not None:
            candidates.append((run.started_at + rules.max_runtime + skew, _hung(run)))
        if rules.progress_timeout is not None:
            candidates.append(
                (run.progress_reference + rules.progress_timeout + skew, _stalled(run))
            )
    if state.transient_since is not None:
        heal_by = later_by(rules.schedule.next_after(state.transient_since), skew)
        candidates.append((heal_by, _transient_expired))
    if state.status in (Status.UP, Status.LATE, Status.UNKNOWN):
        deadlines = heartbeat_deadlines(state, rules, skew)
        if deadlines is not None:
            if state.status != Status.LATE and deadlines.late_at < deadlines.down_at:
                candidates.append((deadlines.late_at, _late))
            candidates.append((deadlines.down_at, _missed))
    if state.is_flapping and state.flip_times:
        candidates.append((state.flip_times[-1] + rules.flap_window, _flapping_over))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[0])


def _late(state, step, at, rules, skew, blind_since, now):
    return _set_status(state, step, Status.LATE, at, Reason.MISSED_DEADLINE, None, rules)


def _missed(state, step, at, rules, skew, blind_since, now):
    if blind_since is not None and at >= blind_since:
        # Tocsin could not see pings when this deadline passed: do not page; start afresh
        # from now, as if the job had checked in when Tocsin could see again.
        state = replace(state, last_checkin_at=max(now, at))
        return _set_status(state, step, Status.UNKNOWN, at, Reason.TOCSIN_BLIND, None, rules)
    deadlines = heartbeat_deadlines(state, rules, skew)
    failure = Failure(Reason.MISSED_HEARTBEAT, at, expected_at=deadlines.expected_at)
    state = replace(state, last_failure=failure, consecutive_successes=0)
    return _set_status(state, step, Status.DOWN, at, Reason.MISSED_HEARTBEAT, failure, rules)


def _hung(run):
    def action(state, step, at, rules, skew, blind_since, now):
        state = _close_run(state, step, run, at, RunOutcome.HUNG, None, None)
        if blind_since is not None and at >= blind_since:
            return state
        return _count_failure(
            state, step, Failure(Reason.HUNG, at, run_started_at=run.started_at), rules
        )

    return action


def _stalled(run):
    def action(state, step, at, rules, skew, blind_since, now):
        state = _close_run(state, step, run, at, RunOutcome.STALLED, None, None)
        if blind_since is not None and at >= blind_since:
            return state
        failure = Failure(Reason.STALLED, at, run_started_at=run.started_at)
        return _count_failure(state, step, failure, rules)

    return action


def _transient_expired(state, step, at, rules, skew, blind_since, now):
    state = replace(state, transient_since=None, transient_streak=0)
    return _count_failure(state, step, Failure(Reason.FAILURE_SIGNAL, at), rules)


def _flapping_over(state, step, at, rules, skew, blind_since, now):
    step.effects.append(FlappingChanged(False, at))
    return replace(state, is_flapping=False, flip_times=())


# --- Pings ----------------------------------------------------------------------------------


def _open_run(state: EvalState, step: Step, ping: PingEvent) -> EvalState:
    runs = state.open_runs
    if len(runs) >= MAX_OPEN_RUNS:
        # A job that starts and never finishes, over and over: the oldest is a zombie.
        state = _close_run(state, step, runs[0], ping.received_at, RunOutcome.HUNG, None, None)
        runs = state.open_runs
    run = OpenRun(started_at=ping.received_at, start_n=ping.n, rid=ping.run_id)
    step.effects.append(RunStarted(ping.run_id, ping.received_at, ping.n))
    return replace(state, open_runs=(*runs, run))


def _find_run(state: EvalState, rid: str | None) -> OpenRun | None:
    if rid is not None:
        return next((r for r in reversed(state.open_runs) if r.rid == rid), None)
    return state.open_runs[-1] if state.open_runs else None


def _record_progress(state: EvalState, ping: PingEvent) -> EvalState:
    run = _find_run(state, ping.run_id)
    if run is None:
        return state
    if ping.done is not None and run.done is not None and ping.done <= run.done:
        # Alive but not advancing: the progress clock is not reset (a stalled run).
        return state
    updated = replace(
        run,
        last_progress_at=ping.received_at,
        done=ping.done if ping.done is not None else run.done,
        total=ping.total if ping.total is not None else run.total,
    )
    return replace(state, open_runs=tuple(updated if r is run else r for r in state.open_runs))


def _close_run(state, step, run, ended_at, outcome, end_n, exit_status, retries=0) -> EvalState:
    step.effects.append(
        RunFinished(
            rid=run.rid if run else None,
            started_at=run.started_at if run else None,
            ended_at=ended_at,
            outcome=outcome,
            start_n=run.start_n if run else None,
            end_n=end_n,
            exit_status=exit_status,
            retries=retries,
        )
    )
    if run is None:
        return state
    return replace(state, open_runs=tuple(r for r in state.open_runs if r is not run))


def _finish(
    state: EvalState, step: Step, ping: PingEvent, outcome: Outcome, rules: Rules
) -> EvalState:
    run = _find_run(state, ping.run_id)
    retries = state.pending_retries if outcome != Outcome.RETRYING else 0
    state = _close_run(
        state,
        step,
        run,
        ping.received_at,
        RUN_OUTCOME_FOR[outcome],
        ping.n,
        ping.exit_status,
        retries,
    )
    state = replace(state, last_checkin_at=ping.received_at)
    if outcome == Outcome.RETRYING:
        state = replace(state, pending_retries=state.pending_retries + 1)
        return _alive(state, step, ping.received_at, rules)
    state = replace(state, pending_retries=0)
    if outcome in (Outcome.SUCCESS, Outcome.PARTIAL):
        return _count_success(state, step, ping.received_at, rules)
    if outcome == Outcome.TRANSIENT:
        streak = state.transient_streak + 1
        if streak <= rules.transient_limit:
            state = replace(
                state,
                transient_streak=streak,
                transient_since=state.transient_since or ping.received_at,
            )
            return _alive(state, step, ping.received_at, rules)
        state = replace(state, transient_streak=0, transient_since=None)
    reason = (
        Reason.PARTIAL_OVER_LIMIT
        if outcome == Outcome.PARTIAL_OVER_LIMIT
        else Reason.FAILURE_SIGNAL
    )
    failure = Failure(
        reason,
        ping.received_at,
        n=ping.n,
        exit_status=ping.exit_status,
        run_started_at=run.started_at if run else None,
    )
    return _count_failure(state, step, failure, rules)


def _alive(state: EvalState, step: Step, at: datetime, rules: Rules) -> EvalState:
    """A check-in that neither succeeds nor fails for good (a retry, a transient failure, a
    failure below the threshold) still proves the job runs: a new, late, paused or unknown
    check is up again; a down check stays down."""
    if state.status in (Status.NEW, Status.LATE, Status.PAUSED, Status.UNKNOWN):
        return _set_status(state, step, Status.UP, at, Reason.CHECKED_IN, None, rules)
    return state


def _count_success(state: EvalState, step: Step, at: datetime, rules: Rules) -> EvalState:
    state = replace(state, consecutive_failures=0, transient_streak=0, transient_since=None)
    if state.status == Status.DOWN:
        successes = state.consecutive_successes + 1
        state = replace(state, consecutive_successes=successes)
        if successes < rules.recovery_threshold:
            return state
        return _set_status(state, step, Status.UP, at, Reason.RECOVERED, None, rules)
    reason = {
        Status.NEW: Reason.FIRST_PING,
        Status.PAUSED: Reason.RESUMED,
    }.get(state.status, Reason.SUCCESS)
    return _set_status(state, step, Status.UP, at, reason, None, rules)


def _count_failure(state: EvalState, step: Step, failure: Failure, rules: Rules) -> EvalState:
    failures = state.consecutive_failures + 1
    state = replace(
        state, consecutive_failures=failures, consecutive_successes=0, last_failure=failure
    )
    if state.status == Status.DOWN:
        return state
    if failures >= rules.failure_threshold:
        return _set_status(state, step, Status.DOWN, failure.at, failure.reason, failure, rules)
    return _alive(state, step, failure.at, rules)


def _set_status(
    state: EvalState,
    step: Step,
    status: Status,
    at: datetime,
    reason: Reason,
    failure: Failure | None,
    rules: Rules,
) -> EvalState:
    if state.status == status:
        return state
    step.effects.append(StatusChanged(state.status, status, at, reason, failure))
    health_flip = status in (Status.UP, Status.DOWN) and state.status in (
        Status.UP,
        Status.DOWN,
        Status.LATE,
    )
    new_state = replace(state, status=status)
    if status == Status.UP:
        new_state = replace(new_state, paused_at=None, consecutive_successes=0)
    if health_flip and rules.flap_threshold:
        new_state = _track_flapping(new_state, step, at, rules)
    return new_state


def _track_flapping(state: EvalState, step: Step, at: datetime, rules: Rules) -> EvalState:
    """More than `flap_threshold` up/down changes within `flap_window` is flapping."""
    recent = (*(t for t in state.flip_times if t > at - rules.flap_window), at)
    flapping = state.is_flapping or len(recent) > rules.flap_threshold
    if flapping and not state.is_flapping:
        step.effects.append(FlappingChanged(True, at))
    return replace(state, flip_times=recent[-(rules.flap_threshold + 1) :], is_flapping=flapping)


# --- Persistence: the state as plain JSON (stored on the check) -------------------------------


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def state_to_json(state: EvalState) -> dict:
    failure = state.last_failure
    return {
        "last_checkin_at": _iso(state.last_checkin_at),
        "paused_at": _iso(state.paused_at),
        "consecutive_failures": state.consecutive_failures,
        "consecutive_successes": state.consecutive_successes,
        "transient_streak": state.transient_streak,
        "transient_since": _iso(state.transient_since),
        "open_runs": [
            {
                "started_at": _iso(run.started_at),
                "start_n": run.start_n,
                "rid": run.rid,
                "last_progress_at": _iso(run.last_progress_at),
                "done": run.done,
                "total": run.total,
            }
            for run in state.open_runs
        ],
        "flip_times": [_iso(t) for t in state.flip_times],
        "is_flapping": state.is_flapping,
        "clock_offset": state.clock_offset.total_seconds(),
        "recent_offsets": [offset.total_seconds() for offset in state.recent_offsets],
        "last_failure": None
        if failure is None
        else {
            "reason": failure.reason.value,
            "at": _iso(failure.at),
            "n": failure.n,
            "exit_status": failure.exit_status,
            "run_started_at": _iso(failure.run_started_at),
            "expected_at": _iso(failure.expected_at),
        },
        "pending_retries": state.pending_retries,
    }


def state_from_json(status: str, data: dict | None) -> EvalState:
    data = data or {}
    failure = data.get("last_failure")
    return EvalState(
        status=Status(status),
        last_checkin_at=_dt(data.get("last_checkin_at")),
        paused_at=_dt(data.get("paused_at")),
        consecutive_failures=data.get("consecutive_failures", 0),
        consecutive_successes=data.get("consecutive_successes", 0),
        transient_streak=data.get("transient_streak", 0),
        transient_since=_dt(data.get("transient_since")),
        open_runs=tuple(
            OpenRun(
                started_at=_dt(run["started_at"]),
                start_n=run["start_n"],
                rid=run.get("rid"),
                last_progress_at=_dt(run.get("last_progress_at")),
                done=run.get("done"),
                total=run.get("total"),
            )
            for run in data.get("open_runs", ())
        ),
        flip_times=tuple(_dt(t) for t in data.get("flip_times", ())),
        is_flapping=data.get("is_flapping", False),
        clock_offset=timedelta(seconds=data.get("clock_offset", 0.0)),
        # States saved before the samples were kept: the last offset is the only sample.
        recent_offsets=tuple(
            timedelta(seconds=seconds)
            for seconds in data.get(
                "recent_offsets", [data["clock_offset"]] if data.get("clock_offset") else []
            )
        ),
        last_failure=None
        if not failure
        else Failure(
            reason=Reason(failure["reason"]),
            at=_dt(failure["at"]),
            n=failure.get("n"),
            exit_status=failure.get("exit_status"),
            run_started_at=_dt(failure.get("run_started_at")),
            expected_at=_dt(failure.get("expected_at")),
        ),
        pending_retries=data.get("pending_retries", 0),
    )
