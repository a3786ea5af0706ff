"""The sweeper: folds new pings into each due check, lets time pass, and writes the outcome.

Each batch is one transaction: claim due rows with SELECT ... FOR UPDATE SKIP LOCKED (so two
sweepers never evaluate the same check at once, and neither waits for the other), fold the
check's unprocessed pings through the state machine in order, advance it to `now`, then write
the new state with a compare-and-set, the flips, runs and ping outcomes, and the incident
changes with their outbox rows. Delivery is enqueued on commit by the outbox.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from apps.incidents.models import Incident
from apps.incidents.services import (
    change_incident_kind,
    failure_details,
    open_incident,
    open_incident_for,
    raise_due_severities,
    resolve_open_incident,
)

from .models import Check, Flip, Ping, Run, SweepRun
from .monitor import BlindWindow, SweepSample, detect_blind_window
from .quarantine import record_evaluation_failure
from .rules import PingEvent, PingKind
from .state import (
    FAILURE_REASONS,
    FlappingChanged,
    PingClassified,
    Reason,
    RunFinished,
    RunStarted,
    Status,
    StatusChanged,
    advance_time,
    apply_ping,
    next_deadline,
    state_to_json,
)

logger = logging.getLogger(__name__)

MAX_BATCHES_PER_SWEEP = 50
# Pings folded per check per sweep; a flood is worked off over several sweeps.
MAX_PINGS_PER_CHECK = 500
BODY_SCAN_BYTES = 100 * 1024


@dataclass
class SweepResult:
    examined: int = 0
    changed: int = 0
    opened: int = 0
    resolved: int = 0
    pings_folded: int = 0
    severities_raised: int = 0
    blind: BlindWindow | None = None
    errors: list[str] = field(default_factory=list)
    # Checks whose evaluation failed and whose team is due a report (quarantine.py): the task
    # sends the reports after the sweep, outside its transactions.
    failures_to_report: list = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"swept {self.examined}, changed {self.changed}, opened {self.opened}, "
            f"resolved {self.resolved}, folded {self.pings_folded} pings"
        )
        if self.blind:
            text += f"; blind since {self.blind.since.isoformat()} ({self.blind.cause})"
        return text


def recent_sweeps(now: datetime) -> list[SweepSample]:
    """The sweeps of the last 40 minutes, newest first; at least the previous one, however old
    (its age is what reveals a stopped sweeper)."""
    before_now = SweepRun.objects.filter(started_at__lt=now).order_by("-started_at")
    columns = ("started_at", "pings_folded")
    rows = list(
        before_now.filter(started_at__gte=now - timedelta(minutes=40)).only(*columns)[:5000]
    )
    if not rows:
        rows = list(before_now.only(*columns)[:1])
    return [SweepSample(r.started_at, r.pings_folded) for r in rows]


def sweep_due_checks(*, now: datetime, batch_size: int | None = None) -> SweepResult:
    """Evaluate every check due at `now` (per the database clock) and record the sweep.

    Safe to run concurrently with itself and with pings. Returns counts for the log.
    """
    batch_size = batch_size or settings.SWEEP_BATCH_SIZE
    started = time.monotonic()
    result = SweepResult()
    if settings.BLIND_WINDOW_DETECTION:
        result.blind = detect_blind_window(
            recent_sweeps(now),
            now=now,
            sweep_interval=timedelta(seconds=settings.SWEEP_INTERVAL),
            allowance=settings.CLOCK_SKEW_ALLOWANCE,
        )
    for _ in range(MAX_BATCHES_PER_SWEEP):
        claimed = _sweep_batch(now=now, batch_size=batch_size, result=result)
        if claimed < batch_size:
            break
    result.severities_raised = raise_due_severities(now=now)
    SweepRun.objects.create(
        started_at=now,
        duration_ms=int((time.monotonic() - started) * 1000),
        examined=result.examined,
        changed=result.changed,
        pings_folded=result.pings_folded,
        blind_since=result.blind.since if result.blind else None,
        blind_cause=result.blind.cause if result.blind else "",
    )
    return result


def _sweep_batch(*, now: datetime, batch_size: int, result: SweepResult) -> int:
    with transaction.atomic():
        batch = list(
            Check.objects.due(now)
            # of=("self",): lock only the check rows. Without it the join locks the team row
            # too, and a second sweeper's SKIP LOCKED then skips every check of that team.
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("team")
            .order_by("alert_after")[:batch_size]
        )
        for check in batch:
            result.examined += 1
            try:
                # A savepoint per check: one bad row never undoes the others or stops the sweep.
                with transaction.atomic():
                    sweep_check(check, now=now, result=result)
            except Exception as exc:
                logger.exception("sweeping check %s failed", check.id)
                result.errors.append(f"{check.id}: {exc}")
                _quarantine(check, error=exc, now=now, result=result)
    return len(batch)


def _quarantine(check: Check, *, error: Exception, now: datetime, result: SweepResult) -> None:
    """Find the ping that makes `check`'s evaluation raise and skip it, so that one bad input
    never stops a check from being judged (retrying it would fail the same way forever).

    Pings are folded one per savepoint until one raises; the ones before it are kept. When
    the first pending ping folds fine alone, the failure needs the pings after it: folding on
    one at a time finds the one that breaks. Nothing pending to blame: the check's own state
    is broken, and it is retried later. Either way the failure is recorded and reported.
    """
    skipped_n = None
    try:
        with transaction.atomic():
            check.refresh_from_db()
            try:
                check.rules(), check.state()
            except Exception as exc:
                # The check's own settings or state cannot be read: no ping is to blame, and
                # skipping them would only lose them.
                return _record_failure(check, error=exc, skipped_n=None, now=now, result=result)
            for _ in range(MAX_PINGS_PER_CHECK):
                # The failed savepoint left the in-memory check ahead of its row.
                check.refresh_from_db()
                pending = (
                    Ping.objects.filter(owner=check, n__gt=check.processed_n)
                    .order_by("n")
                    .values_list("n", flat=True)
                    .first()
                )
                if pending is None:
                    break
                try:
                    with transaction.atomic():
                        sweep_check(check, now=now, result=result, max_pings=1)
                except Exception as exc:
                    error, skipped_n = exc, pending
                    break
            check.refresh_from_db()
            if skipped_n is None:
                # Every pending ping folded: only letting time pass is left to try. If it works
                # now, the first failure was passing (a lost connection), not this check's.
                try:
                    with transaction.atomic():
                        sweep_check(check, now=now, result=result)
                    return
                except Exception as exc:
                    error = exc
                check.refresh_from_db()
            _record_failure(check, error=error, skipped_n=skipped_n, now=now, result=result)
    except Exception:
        # Even recording failed (the database refuses writes): the row keeps its deadline,
        # and the next sweep tries again.
        logger.exception("quarantining check %s failed", check.id)


def _record_failure(check, *, error, skipped_n, now, result: SweepResult) -> None:
    if record_evaluation_failure(check, error=error, skipped_n=skipped_n, now=now):
        result.failures_to_report.append(str(check.id))


def ping_event(ping: Ping) -> PingEvent:
    body = bytes(ping.body[:BODY_SCAN_BYTES]).decode("utf-8", errors="replace")
    return PingEvent(
        n=ping.n,
        kind=PingKind(ping.kind),
        received_at=ping.received_at,
        method=ping.method,
        run_id=str(ping.run_id) if ping.run_id else None,
        exit_status=ping.exit_status,
        body=body,
        attempt=ping.attempt,
        max_attempts=ping.max_attempts,
        processed=ping.processed,
        failed=ping.failed_items,
        done=ping.done,
        total=ping.total,
        sent_at=ping.sent_at,
    )


def sweep_check(
    check: Check, *, now: datetime, result: SweepResult, max_pings: int = MAX_PINGS_PER_CHECK
) -> None:
    """Fold the claimed check's new pings (at most `max_pings`; the rest leave it due), advance
    it to `now`, and write what changed."""
    rules = check.rules()
    skew = settings.CLOCK_SKEW_ALLOWANCE
    blind_since = result.blind.since if result.blind else None
    state = check.state()
    pings = list(
        Ping.objects.filter(owner=check, n__gt=check.processed_n).order_by("n")[:max_pings]
    )
    effects = []
    for ping in pings:
        step = apply_ping(state, ping_event(ping), rules, skew, blind_since)
        state = step.state
        effects.extend(step.effects)
    more_pending = len(pings) == max_pings
    if not more_pending:
        step = advance_time(state, rules, now, skew, blind_since)
        state = step.state
        effects.extend(step.effects)
    result.pings_folded += len(pings)

    alert_after = now if more_pending else next_deadline(state, rules, skew)
    processed_n = pings[-1].n if pings else check.processed_n
    # Compare-and-set on what we read: a concurrent writer (another sweeper on SQLite, which
    # has no row locks) makes this a no-op, and the check stays due for the next sweep.
    written = Check.objects.filter(
        id=check.id, processed_n=check.processed_n, status=check.status
    ).update(
        status=state.status,
        eval_state=state_to_json(state),
        processed_n=processed_n,
        alert_after=alert_after,
    )
    if not written:
        return
    was_flapping = check.state().is_flapping
    check.status, check.eval_state = state.status, state_to_json(state)
    _write_effects(check, effects, rules=rules, now=now, result=result, flapping=was_flapping)


def _write_effects(check, effects, *, rules, now, result, flapping) -> None:
    outcomes: dict[str, list[int]] = {}
    for effect in effects:
        if isinstance(effect, PingClassified):
            outcomes.setdefault(effect.outcome, []).append(effect.n)
        elif isinstance(effect, RunStarted):
            Run.objects.create(
                owner=check, run_id=effect.rid, started_at=effect.started_at, start_n=effect.n
            )
        elif isinstance(effect, RunFinished):
            _finish_run(check, effect)
        elif isinstance(effect, StatusChanged):
            result.changed += 1
            Flip.objects.create(
                owner=check,
                from_status=effect.from_status,
                to_status=effect.to_status,
                happened_at=effect.at,
                reason=effect.reason,
            )
            # While a check flaps, its flips are recorded but open and close nothing.
            if not flapping or effect.to_status == Status.PAUSED:
                _incident_for_status_change(check, effect, rules=rules, now=now, result=result)
        elif isinstance(effect, FlappingChanged):
            flapping = effect.is_flapping
            _incident_for_flapping(check, effect, rules=rules, now=now, result=result)
    for outcome, numbers in outcomes.items():
        Ping.objects.filter(owner=check, n__in=numbers).update(outcome=outcome)


def _finish_run(check: Check, effect: RunFinished) -> None:
    fields = {
        "ended_at": effect.ended_at,
        "duration": effect.duration,
        "outcome": effect.outcome,
        "end_n": effect.end_n,
        "exit_status": effect.exit_status,
        "retries": effect.retries,
    }
    if effect.start_n is not None:
        updated = Run.objects.filter(owner=check, start_n=effect.start_n).update(**fields)
        if updated:
            return
    Run.objects.create(owner=check, run_id=effect.rid, started_at=effect.started_at, **fields)


def _incident_for_status_change(check, effect: StatusChanged, *, rules, now, result) -> None:
    if effect.to_status == Status.DOWN and effect.reason in FAILURE_REASONS:
        open_incident(
            check=check,
            kind=effect.reason.value,
            opened_at=effect.at,
            details=failure_details(check, effect.failure),
            now=now,
            rules=rules,
        )
        result.opened += 1
    elif effect.from_status == Status.DOWN and effect.to_status == Status.UP:
        if resolve_open_incident(
            check=check, resolved_at=effect.at, now=now, resolution=Incident.Resolution.RECOVERED
        ):
            result.resolved += 1
    elif effect.to_status == Status.PAUSED:
        resolve_open_incident(
            check=check, resolved_at=effect.at, now=now, resolution=Incident.Resolution.PAUSED
        )


def _incident_for_flapping(check, effect: FlappingChanged, *, rules, now, result) -> None:
    if effect.is_flapping:
        # One alert that the check flaps, not one per flip: relabel the open incident, or open
        # one (which notifies once) if the last flip was a recovery.
        if change_incident_kind(check=check, kind=Incident.Kind.FLAPPING, at=effect.at) is None:
            open_incident(
                check=check,
                kind=Incident.Kind.FLAPPING,
                opened_at=effect.at,
                details=failure_details(check, check.state().last_failure),
                now=now,
                rules=rules,
            )
            result.opened += 1
        return
    # Stable again: up means the episode is over; down means a plain failure remains.
    if check.status == Status.UP:
        if resolve_open_incident(
            check=check, resolved_at=effect.at, now=now, resolution=Incident.Resolution.RECOVERED
        ):
            result.resolved += 1
    elif open_incident_for(check) is not None:
        last = check.state().last_failure
        kind = last.reason.value if last else Reason.FAILURE_SIGNAL.value
        change_incident_kind(check=check, kind=kind, at=effect.at)


def prune_sweep_runs(*, now: datetime, keep_for: timedelta = timedelta(days=2)) -> int:
    """Sweep records older than `keep_for` (enough for the blind-window baseline and lag)."""
    deleted, _ = SweepRun.objects.filter(started_at__lt=now - keep_for).delete()
    return deleted
