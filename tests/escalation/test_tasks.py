"""The beat task on a real Celery worker: it reads the database clock, escalates what is due
and the escalation email goes out through the notification outbox."""

from datetime import timedelta

import pytest
from django.core import mail

from apps.clock import database_now
from apps.escalation.tasks import escalate_due_incidents_task

from .helpers import make_policy, open_for, owed

MIN = timedelta(minutes=1)


@pytest.mark.django_db(transaction=True)
def test_beat_task_on_a_real_worker_escalates_and_the_email_goes_out(
    celery_worker, team, owner, member, check
):
    make_policy(team, [(10, [("user", owner.id)]), (10, [("user", member.id)])], is_default=True)
    with celery_worker.exclusive():
        # Opened 11 minutes ago by the database clock: step 2 (bob) is due now.
        incident = open_for(check, database_now() - 11 * MIN)
        escalate_due_incidents_task.delay()
    celery_worker.wait_for(
        lambda: any(member.email in message.to for message in mail.outbox),
        what="bob's escalation email",
    )
    assert owed(incident) == [
        ("down", 0, 0, f"user:{owner.id}"),
        ("escalation", 0, 1, f"user:{member.id}"),
    ]
    assert any(owner.email in message.to for message in mail.outbox)
