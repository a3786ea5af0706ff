"""The sweeper: folds new pings into each due check, lets time pass, and writes the outcome.

Set-based, one transaction per batch of due checks:

1. claim the batch: SELECT ... FOR UPDATE SKIP LOCKED, in deadline order (two sweepers never
   evaluate the same check at once, and neither waits for the other);
2. load the unfolded pings of the whole batch in one query (at most MAX_PINGS_PER_CHECK per
   check: a flood is worked off over several sweeps);
3. fold each check in memory through the pure state machine (state.py) and advance it to `now`;
4. write the batch in bulk: one statement updates every check row with a compare-and-set on
   what was read (a row changed meanwhile is left for the next sweep), flips and runs are
   inserted together, ping outcomes set with one UPDATE per outcome, and the status changes are
   announced to the layers above as one list (apps/checks/signals.py): their receivers write
   the incidents, timeline events and outbox rows in bulk, inside this same transaction.

If anything in a batch raises, the batch is undone to its savepoint and redone check by check,
each in a savepoint of its own; a check that fails alone is pushed back by
RETRY_BROKEN_CHECK_AFTER and logged, so one bad row never costs the others, nor crash-loops the
sweep. Delivery is enqueued on commit by the outbox.

A sweep with nothing due reads one entry of the check_due index (the earliest alert_after) and
records itself: it costs about a millisecond whatever the number of checks.
"""

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q

from apps.bulk import bound_cursor, insert_many, update_many

from .models import SWEEPABLE, Check, Flip, Ping, Run, SweepRun
from .monitor import BlindWindow, SweepSample, detect_blind_window
from .quarantine import record_evaluation_failure
from .rules import PingEvent, PingKind, Rules
from .signals import CheckChanged, announce_changes, announce_sweep_finished
from .state import (
    EvalState,
    FlappingChanged,
    PingClassified,
    RunFinished,
    RunStarted,
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
RUN_FINISH_FIELDS = ["ended_at", "duration", "outcome", "end_n", "exit_status", "retries"]


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

    def add(self, other: "SweepResult") -> None:
        """Count in what one batch (or one check) wrote."""
        self.changed += other.changed
        self.opened += other.opened
        self.resolved += other.resolved
        self.pings_folded += other.pings_folded
        self.errors += other.errors
        self.failures_to_report += other.failures_to_report


@dataclass
class Evaluated:
    """A check folded in memory: its new state and the effects to write."""

    check: Check
    rules: Rules
    state: EvalState
    effects: list
    was_flapping: bool
    processed_n: int = 0
    alert_after: datetime | None = None
    # Ping number -> Ping id, for the ping outcomes.
    ping_ids: dict[int, int] = field(default_factory=dict)


def recent_sweeps(now: datetime) -> list[SweepSample]:
    """The sweeps of the last 40 minutes, newest first; at least the previous one, however old
    (its age is what reveals a stopped sweeper)."""
    before_now = SweepRun.objects.filter(started_at__lt=now).order_by("-started_at")
    columns = ("started_at", "pings_folded", "duration_ms")
    rows = list(
        before_now.filter(started_at__gte=now - timedelta(minutes=40)).only(*columns)[:5000]
    )
    if not rows:
        rows = list(before_now.only(*columns)[:1])
    return [_sample(r.started_at, r.pings_folded, r.duration_ms) for r in rows]


def previous_sweep(now: datetime) -> list[SweepSample]:
    """The sweep before `now` alone: enough to tell whether the sweeper had stopped."""
    row = (
        SweepRun.objects.filter(started_at__lt=now)
        .order_by("-started_at")
        .values_list("started_at", "pings_folded", "duration_ms")
        .first()
    )
    return [_sample(*row)] if row else []


def _sample(started_at: datetime, pings_folded: int, duration_ms: int) -> SweepSample:
    return SweepSample(started_at, pings_folded, timedelta(milliseconds=duration_ms))


def earliest_due_at() -> datetime | None:
    """The earliest alert_after of any check: one entry of the check_due partial index (an
    index-only scan on PostgreSQL)."""
    return (
        Check.objects.filter(SWEEPABLE)
        .order_by("alert_after")
        .values_list("alert_after", flat=True)
        .first()
    )


def sweep_due_checks(*, now: datetime, batch_size: int | None = None) -> SweepResult:
    """Evaluate every check due at `now` (per the database clock) and record the sweep.

    Safe to run concurrently with itself and with pings. Returns counts for the log.
    """
    batch_size = batch_size or settings.SWEEP_BATCH_SIZE
    started = time.monotonic()
    result = SweepResult()
    due_at = earliest_due_at()
    anything_due = due_at is not None and due_at <= now
    if settings.BLIND_WINDOW_DETECTION:
        # With nothing due no check is judged, so the ingest rate does not matter now; only a
        # stopped sweeper is worth recording, and the previous sweep alone shows it.
        history = recent_sweeps(now) if anything_due else previous_sweep(now)
        result.blind = detect_blind_window(
            history,
            now=now,
            sweep_interval=timedelta(seconds=settings.SWEEP_INTERVAL),
            allowance=settings.CLOCK_SKEW_ALLOWANCE,
        )
    if anything_due:
        for _ in range(MAX_BATCHES_PER_SWEEP):
            claimed = _sweep_batch(now=now, batch_size=batch_size, result=result)
            if claimed < batch_size:
                break
    result.severities_raised = announce_sweep_finished(now=now)
    _record_sweep(
        started_at=now,
        duration_ms=int((time.monotonic() - started) * 1000),
        examined=result.examined,
        changed=result.changed,
        pings_folded=result.pings_folded,
        blind_since=result.blind.since if result.blind else None,
        blind_cause=result.blind.cause if result.blind else "",
    )
    return result


def _record_sweep(**fields) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Monitoring data: losing the last row in a crash is harmless, so this commit need
            # not wait for the disk (it is most of an idle sweep's cost otherwise).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        SweepRun.objects.create(**fields)


def _sweep_batch(*, now: datetime, batch_size: int, result: SweepResult) -> int:
    blind_since = result.blind.since if result.blind else None
    with transaction.atomic():
        batch = list(
            Check.objects.due(now)
            # of=("self",): lock only the check rows. Without it the join locks the team row
            # too, and a second sweeper's SKIP LOCKED then skips every check of that team.
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("team")
            .order_by("alert_after")[:batch_size]
        )
        if not batch:
            return 0
        result.examined += len(batch)
        try:
            with transaction.atomic():
                written = sweep_checks(batch, now=now, blind_since=blind_since)
        except Exception:
            logger.exception("a batch of %d checks failed; redoing it check by check", len(batch))
            written = _sweep_one_by_one([check.id for check in batch], now, blind_since)
        result.add(written)
    return len(batch)


def _sweep_one_by_one(ids, now: datetime, blind_since: datetime | None) -> SweepResult:
    """The batch again, one savepoint per check; a check that fails alone is quarantined."""
    result = SweepResult()
    # Read again: the failed attempt may have changed the objects in memory. The rows are still
    # locked by this transaction (on PostgreSQL), and still due unless another sweeper took
    # them meanwhile (SQLite, which has no row locks).
    checks = Check.objects.due(now).filter(id__in=ids).select_related("team")
    for check in checks.order_by("alert_after"):
        try:
            with transaction.atomic():
                result.add(sweep_checks([check], now=now, blind_since=blind_since))
        except Exception as exc:
            logger.exception("sweeping check %s failed", check.id)
            result.errors.append(f"{check.id}: {exc}")
            _quarantine(check, error=exc, now=now, blind_since=blind_since, result=result)
    return result


def sweep_checks(
    checks: list[Check], *, now: datetime, blind_since=None, max_pings=MAX_PINGS_PER_CHECK
) -> SweepResult:
    """Fold, advance and write `checks` (claimed by the caller) as one set, folding at most
    `max_pings` pending pings per check (the rest leave it due)."""
    pending = _pending_pings(checks, max_pings)
    folded = [
        fold(
            check, pending.get(check.id, []), now=now, blind_since=blind_since, max_pings=max_pings
        )
        for check in checks
    ]
    written = _write_checks(folded)
    done = [item for item in folded if item.check.id in written]
    for item in done:
        item.check.status = item.state.status
        item.check.eval_state = state_to_json(item.state)
    result = write_effects(done, now=now)
    result.pings_folded = sum(len(item.ping_ids) for item in folded)
    return result


def _pending_pings(checks: list[Check], max_pings: int = MAX_PINGS_PER_CHECK) -> dict:
    """Check id -> its unfolded pings in order, at most `max_pings` each, in one query.
    Pings are numbered 1, 2, 3, ... per check (n_pings counts them), so the next ones to fold
    are those numbered after processed_n."""
    behind = [check.id for check in checks if check.n_pings > check.processed_n]
    if not behind:
        return {}
    # The claimed rows are locked by this transaction (PostgreSQL), so the processed_n read
    # here in the join is the one in memory. On SQLite a concurrent sweeper may have moved it;
    # then the compare-and-set in _write_checks leaves that check's fold unwritten anyway.
    waiting = Ping.objects.filter(
        owner_id__in=behind,
        n__gt=F("owner__processed_n"),
        n__lte=F("owner__processed_n") + max_pings,
    )
    pending: dict = {}
    for ping in waiting.order_by("owner_id", "n"):
        pending.setdefault(ping.owner_id, []).append(ping)
    return pending


def _quarantine(
    check: Check, *, error: Exception, now: datetime, blind_since, result: SweepResult
) -> None:
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
                        result.add(
                            sweep_checks([check], now=now, blind_since=blind_since, max_pings=1)
                        )
                except Exception as exc:
                    error, skipped_n = exc, pending
                    break
            check.refresh_from_db()
            if skipped_n is None:
                # Every pending ping folded: only letting time pass is left to try. If it works
                # now, the first failure was passing (a lost connection), not this check's.
                try:
                    with transaction.atomic():
                        result.add(sweep_checks([check], now=now, blind_since=blind_since))
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


def fold(
    check: Check,
    pings: list[Ping],
    *,
    now: datetime,
    blind_since=None,
    max_pings: int = MAX_PINGS_PER_CHECK,
) -> Evaluated:
    """The check's new state after its `pings` (in order, at most `max_pings` of them loaded)
    and the time up to `now`: pure, no database access."""
    rules = check.rules()
    skew = settings.CLOCK_SKEW_ALLOWANCE
    state = check.state()
    was_flapping = state.is_flapping
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
    return Evaluated(
        check=check,
        rules=rules,
        state=state,
        effects=effects,
        was_flapping=was_flapping,
        processed_n=pings[-1].n if pings else check.processed_n,
        alert_after=now if more_pending else next_deadline(state, rules, skew),
        ping_ids={ping.n: ping.id for ping in pings},
    )


def _write_checks(folded: list[Evaluated]) -> set:
    """Write every folded check's new state, with a compare-and-set on the status and
    processed_n that were read: a row that a concurrent writer changed (another sweeper on
    SQLite, which has no row locks) is left as it is and stays due for the next sweep. Returns
    the ids written."""
    if not folded:
        return set()
    if connection.vendor != "postgresql":
        return {item.check.id for item in folded if _write_check(item)}
    table = connection.ops.quote_name(Check._meta.db_table)
    # One array per column (unnest), sent in binary: the statement's text is the same for
    # every batch, so psycopg parses it once however many checks the batch holds, and no
    # element is quoted (see apps/bulk.py).
    sql = (
        f"UPDATE {table} AS c SET status = v.status, eval_state = v.eval_state, "
        "processed_n = v.processed_n, alert_after = v.alert_after "
        "FROM unnest(%b::uuid[], %b::varchar[], %b::jsonb[], %b::integer[], "
        "%b::timestamptz[], %b::integer[], %b::varchar[]) "
        "AS v(id, status, eval_state, processed_n, alert_after, old_n, old_status) "
        "WHERE c.id = v.id AND c.processed_n = v.old_n AND c.status = v.old_status "
        "RETURNING c.id"
    )
    params = [
        [item.check.id for item in folded],
        [item.state.status.value for item in folded],
        [json.dumps(state_to_json(item.state)) for item in folded],
        [item.processed_n for item in folded],
        [item.alert_after for item in folded],
        [item.check.processed_n for item in folded],
        [item.check.status for item in folded],
    ]
    with bound_cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _write_check(item: Evaluated) -> bool:
    check = item.check
    return bool(
        Check.objects.filter(
            id=check.id, processed_n=check.processed_n, status=check.status
        ).update(
            status=item.state.status,
            eval_state=state_to_json(item.state),
            processed_n=item.processed_n,
            alert_after=item.alert_after,
        )
    )


def write_effects(evaluated: list[Evaluated], *, now: datetime) -> SweepResult:
    """Write the flips, runs and ping outcomes of the evaluated checks in bulk, and announce
    their status and flapping changes to the layers above (incidents), in this transaction.
    The checks must carry their new status and evaluation state already."""
    result = SweepResult()
    flips, outcomes, changes = [], {}, []
    started: dict[tuple, Run] = {}
    finished: list[tuple[Check, RunFinished]] = []
    for item in evaluated:
        check, transitions = item.check, []
        for effect in item.effects:
            if isinstance(effect, PingClassified):
                outcomes.setdefault(effect.outcome, []).append(item.ping_ids[effect.n])
            elif isinstance(effect, RunStarted):
                started[(check.id, effect.n)] = Run(
                    owner=check, run_id=effect.rid, started_at=effect.started_at, start_n=effect.n
                )
            elif isinstance(effect, RunFinished):
                finished.append((check, effect))
            elif isinstance(effect, StatusChanged):
                result.changed += 1
                flips.append(
                    Flip(
                        owner=check,
                        from_status=effect.from_status,
                        to_status=effect.to_status,
                        happened_at=effect.at,
                        reason=effect.reason,
                    )
                )
                transitions.append(effect)
            elif isinstance(effect, FlappingChanged):
                transitions.append(effect)
        if transitions:
            changes.append(CheckChanged(check, item.rules, tuple(transitions), item.was_flapping))
    _write_runs(started, finished)
    if flips:
        insert_many(Flip, flips)
    for outcome, ping_ids in outcomes.items():
        Ping.objects.filter(id__in=ping_ids).update(outcome=outcome)
    consequences = announce_changes(changes, now=now)
    result.opened, result.resolved = consequences.opened, consequences.resolved
    return result


def _finish_fields(effect: RunFinished) -> dict:
    return {
        "ended_at": effect.ended_at,
        "duration": effect.duration,
        "outcome": effect.outcome,
        "end_n": effect.end_n,
        "exit_status": effect.exit_status,
        "retries": effect.retries,
    }


def _write_runs(started: dict[tuple, Run], finished: list[tuple[Check, RunFinished]]) -> None:
    """Runs that started, and runs that finished: a finish completes the run its start ping
    opened (in this batch, or an earlier sweep's), else it is a run of its own (a finish with
    no start ping)."""
    earlier = Q()
    for check, effect in finished:
        if effect.start_n is not None and (check.id, effect.start_n) not in started:
            earlier |= Q(owner_id=check.id, start_n=effect.start_n)
    open_runs: dict[tuple, list[Run]] = {}
    if earlier:
        for run in Run.objects.filter(earlier):
            open_runs.setdefault((run.owner_id, run.start_n), []).append(run)
    create, update = list(started.values()), []
    for check, effect in finished:
        fields = _finish_fields(effect)
        key = (check.id, effect.start_n)
        if effect.start_n is not None and key in started:
            for name, value in fields.items():
                setattr(started[key], name, value)
        elif effect.start_n is not None and key in open_runs:
            for run in open_runs[key]:
                for name, value in fields.items():
                    setattr(run, name, value)
                update.append(run)
        else:
            create.append(
                Run(owner=check, run_id=effect.rid, started_at=effect.started_at, **fields)
            )
    if create:
        insert_many(Run, create)
    if update:
        update_many(Run, update, RUN_FINISH_FIELDS)


def prune_sweep_runs(*, now: datetime, keep_for: timedelta = timedelta(days=2)) -> int:
    """Sweep records older than `keep_for` (enough for the blind-window baseline and lag)."""
    deleted, _ = SweepRun.objects.filter(started_at__lt=now - keep_for).delete()
    return deleted
