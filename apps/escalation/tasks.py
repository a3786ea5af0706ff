from celery import shared_task

from apps.clock import database_now

from .engine import escalate_due_incidents
from .hygiene import remind_expiring_silences


@shared_task(ignore_result=True)
def escalate_due_incidents_task() -> str:
    now = database_now()
    summary = str(escalate_due_incidents(now=now))
    reminded = remind_expiring_silences(now=now)
    return f"{summary}, reminded {reminded} silence creators"
