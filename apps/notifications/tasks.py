"""Thin Celery wrappers. Each delivery is its own task with a short outbound timeout, so a slow
or dead target holds one worker slot for at most OUTBOUND_TIMEOUT and never delays other
deliveries' tasks beyond that. Retries are not Celery retries: a failed attempt stores
next_attempt_at and retry_due_deliveries_task (beat) hands it out when due."""

from datetime import datetime

from celery import shared_task

from apps.clock import database_now

from .delivery import deliver, due_delivery_ids
from .flush import flush_due_groups


@shared_task(acks_late=True)
def deliver_task(delivery_id: int) -> str:
    return deliver(delivery_id=delivery_id, now=database_now())


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
    ids = due_delivery_ids(now=database_now())
    for delivery_id in ids:
        deliver_task.delay(delivery_id)
    return f"handed out {len(ids)}"
