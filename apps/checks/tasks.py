from celery import shared_task
from django.conf import settings

from .clock import database_now
from .pings import prune_pings
from .sweeper import sweep_due_checks


@shared_task(ignore_result=True)
def sweep_due_checks_task() -> str:
    return str(sweep_due_checks(now=database_now(), batch_size=settings.SWEEP_BATCH_SIZE))


@shared_task(ignore_result=True)
def prune_pings_task() -> str:
    return f"pruned {prune_pings()} pings"
