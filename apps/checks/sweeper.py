"""The sweeper: finds due checks, applies the state machine, opens and resolves incidents.

Each batch is one transaction: claim due rows with SELECT ... FOR UPDATE SKIP LOCKED (so two
sweepers never evaluate the same check at once, and neither waits for the other), write the
new status with a compare-and-set on the old one, the Flip, the incident change and its outbox
rows. Delivery is enqueued on commit by the outbox.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from apps.incidents.models import Incident
from apps.incidents.services import failure_details, open_incident, resolve_open_incident

from .models import Check, Flip, SweepRun
from .state import Reason, Status, evaluate

logger = logging.getLogger(__name__)

# A check whose evaluation raised is looked at again after this long, not in a tight loop.
RETRY_BROKEN_CHECK_AFTER = timedelta(minutes=5)
MAX_BATCHES_PER_SWEEP = 50

INCIDENT_KIND_FOR = {
    Reason.MISSED_HEARTBEAT: Incident.Kind.MISSED_HEARTBEAT,
    Reason.FAILURE_SIGNAL: Incident.Kind.FAILURE_SIGNAL,
}


@dataclass
class SweepResult:
    examined: int = 0
    changed: int = 0
    opened: int = 0
    resolved: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"swept {self.examined}, changed {self.changed}, opened {self.opened}, "
            f"resolved {self.resolved}"
        )


def sweep_due_checks(*, now: datetime, batch_size: int | None = None) -> SweepResult:
    """Evaluate every check due at `now` (per the database clock) and record the sweep.

    Safe to run concurrently with itself and with pings. Returns counts for the log.
    """
    batch_size = batch_size or settings.SWEEP_BATCH_SIZE
    started = time.monotonic()
    result = SweepResult()
    for _ in range(MAX_BATCHES_PER_SWEEP):
        claimed = _sweep_batch(now=now, batch_size=batch_size, result=result)
        if claimed < batch_size:
            break
    SweepRun.objects.create(
        started_at=now,
        duration_ms=int((time.monotonic() - started) * 1000),
        examined=result.examined,
        changed=result.changed,
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
                    apply_evaluation(check, now=now, result=result)
            except Exception as exc:
                logger.exception("sweeping check %s failed", check.id)
                result.errors.append(f"{check.id}: {exc}")
                Check.objects.filter(id=check.id).update(alert_after=now + RETRY_BROKEN_CHECK_AFTER)
    return len(batch)


def apply_evaluation(check: Check, *, now: datetime, result: SweepResult) -> None:
    """Apply the state machine's verdict to one claimed check (inside the batch transaction)."""
    verdict = evaluate(check.snapshot(), now, settings.CLOCK_SKEW_ALLOWANCE)
    previous = check.status
    updates = {"alert_after": verdict.alert_after}
    if verdict.changed:
        updates["status"] = verdict.status
        if previous == Status.PAUSED:
            updates["paused_at"] = None
    # Compare-and-set: if a ping changed the facts since we read them, leave the row for the
    # next sweep (the ping has marked it due again) instead of overwriting newer state.
    written = Check.objects.filter(
        id=check.id, status=previous, last_ping_at=check.last_ping_at
    ).update(**updates)
    if not written or not verdict.changed:
        return
    result.changed += 1
    Flip.objects.create(
        owner=check,
        from_status=previous,
        to_status=verdict.status,
        happened_at=verdict.changed_at,
        reason=verdict.reason,
    )
    check.status = verdict.status
    if verdict.opens_incident:
        expected_at = verdict.deadlines.expected_at if verdict.deadlines else None
        open_incident(
            check=check,
            kind=INCIDENT_KIND_FOR[verdict.reason],
            opened_at=verdict.changed_at,
            details=failure_details(check, expected_at=expected_at),
            now=now,
        )
        result.opened += 1
    elif verdict.resolves_incident and previous == Status.DOWN:
        resolved = resolve_open_incident(
            check=check,
            resolved_at=verdict.changed_at,
            now=now,
            resolution=Incident.Resolution.RECOVERED,
        )
        result.resolved += resolved is not None
