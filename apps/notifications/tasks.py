"""Thin Celery wrappers. Deliveries are sent by runs of deliver_due_task on the deliveries
queue: each run sends every due delivery, DELIVERY_CONCURRENCY at a time on threads (see
delivery.py), so a slow or dead target holds one thread for at most OUTBOUND_TIMEOUT and never
delays the others. Retries are not Celery retries: a failed attempt stores next_attempt_at, and
retry_due_deliveries_task (beat) releases lapsed leases and wakes a run when anything is due."""

import logging
import math
from datetime import datetime

from celery import shared_task
from django.conf import settings

from apps.clock import database_now

from .delivery import CLAIM_FOR_SECONDS, deliver, deliver_due, prepare_due_deliveries
from .flush import flush_due_groups
from .status_reports import send_due_reports

logger = logging.getLogger(__name__)

# More runs than this at once rarely find a process free; each run keeps claiming while
# anything is due, so one run is enough for any burst and the rest only share it out.
MAX_RUNS_PER_WAKE = 4


@shared_task(acks_late=True)
def deliver_due_task() -> str:
    result = deliver_due(now=database_now(), claim_for=CLAIM_FOR_SECONDS)
    if result.stopped_claiming:
        wake_deliverers(1)
    return str(result)


@shared_task(acks_late=True)
def deliver_task(delivery_id: int) -> str:
    """One delivery, at once (messages enqueued by earlier versions; an operator's retry)."""
    return deliver(delivery_id=delivery_id, now=database_now())


def wake_deliverers(due: int) -> None:
    """Enqueue runs of deliver_due_task for `due` deliveries: one per DELIVERY_CONCURRENCY of
    them, up to MAX_RUNS_PER_WAKE. A wake-up that waited past two beat intervals expires (the
    beat wakes them again), so a stopped deliverer does not pile them up. A broker outage is
    logged, not raised: the deliveries are pending and due, and the beat hands them out once
    the broker is back."""
    runs = min(math.ceil(due / settings.DELIVERY_CONCURRENCY), MAX_RUNS_PER_WAKE)
    try:
        for _ in range(runs):
            deliver_due_task.apply_async(expires=settings.NOTIFICATION_FLUSH_INTERVAL * 2)
    except Exception:
        logger.warning("could not enqueue a delivery run for %s deliveries; beat will", due)


@shared_task
def flush_notification_groups_task(team_id: int | None = None, as_of: str | None = None) -> str:
    """`as_of` is the `now` of the write that asked for this flush: its rows are due as of then,
    even if this worker's clock reads earlier."""
    now = database_now()
    if as_of is not None:
        now = max(now, datetime.fromisoformat(as_of))
    return str(flush_due_groups(now=now, team_id=team_id))


@shared_task
def retry_due_deliveries_task() -> str:
    due = prepare_due_deliveries(now=database_now())
    wake_deliverers(due)
    return f"{due} due"


@shared_task(acks_late=True)
def send_status_reports_task(as_of: str | None = None) -> str:
    """Beat: every status report that is due (each claimed once, whoever runs this). `as_of`
    (ISO 8601) replaces the database clock: tests, or an operator catching up a period."""
    now = datetime.fromisoformat(as_of) if as_of else database_now()
    return f"sent {send_due_reports(now=now)} status reports"
