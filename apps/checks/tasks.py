import logging

from celery import shared_task
from django.conf import settings

from apps.clock import database_now

from .deadman import ping_deadman
from .pings import prune_pings
from .quarantine import report_evaluation_failure
from .sweeper import prune_sweep_runs, sweep_due_checks

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def sweep_due_checks_task() -> str:
    result = sweep_due_checks(now=database_now(), batch_size=settings.SWEEP_BATCH_SIZE)
    summary = str(result)
    for check_id in result.failures_to_report:
        try:
            report_evaluation_failure_task.delay(check_id)
        except Exception:
            logger.warning("could not enqueue the evaluation failure report of %s", check_id)
    if settings.SWEEPER_DEADMAN_URL:
        try:
            # Its own task: a slow or dead outside URL never delays the next sweep.
            ping_deadman_task.delay(summary)
        except Exception:
            logger.warning("could not enqueue the dead-man ping")
    return summary


@shared_task(ignore_result=True, time_limit=120)
def report_evaluation_failure_task(check_id: str) -> bool:
    return report_evaluation_failure(check_id)


@shared_task(ignore_result=True, time_limit=60)
def ping_deadman_task(summary: str = "") -> bool:
    return ping_deadman(
        settings.SWEEPER_DEADMAN_URL, timeout=settings.SWEEPER_DEADMAN_TIMEOUT, summary=summary
    )


@shared_task(ignore_result=True)
def prune_pings_task() -> str:
    pings = prune_pings()
    sweeps = prune_sweep_runs(now=database_now())
    return f"pruned {pings} pings and {sweeps} sweep records"
