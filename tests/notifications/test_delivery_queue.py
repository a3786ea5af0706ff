"""Deliveries travel on a queue of their own, so that a deployment can give them their own
worker: a receiver that hangs then never holds up the sweep. A worker started without -Q still
consumes every queue, so a one-worker setup delivers too."""

import pytest
from celery import Celery
from django.conf import settings

from apps.checks.tasks import sweep_due_checks_task
from apps.notifications.tasks import deliver_task
from config.celery import app as celery_app
from tests.worker import run_worker, session_queue_names

DELIVER = "apps.notifications.tasks.deliver_task"
SWEEP = "apps.checks.tasks.sweep_due_checks_task"


def test_production_settings_route_deliveries_to_their_queue_and_a_plain_worker_takes_both():
    assert settings.CELERY_TASK_ROUTES[DELIVER] == {"queue": settings.DELIVERY_QUEUE}
    # What `celery -A config worker` (no -Q) consumes, worked out by Celery itself from an app
    # configured like config.celery's but untouched by the tests' queue names.
    plain = Celery("plain")
    plain.config_from_object("django.conf:settings", namespace="CELERY")
    consumed = set(plain.amqp.queues.consume_from)
    assert consumed == {settings.CELERY_TASK_DEFAULT_QUEUE, settings.DELIVERY_QUEUE}
    route = plain.amqp.router.route({}, DELIVER)
    assert route["queue"].name == settings.DELIVERY_QUEUE
    assert plain.amqp.router.route({}, SWEEP)["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE


def waiting_in(queue_name: str) -> int:
    with celery_app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue=queue_name, passive=True)[1]


@pytest.mark.django_db(transaction=True)
def test_a_worker_of_the_default_queue_sweeps_while_deliveries_wait_for_theirs():
    default_queue, delivery_queue = session_queue_names()
    with run_worker(queues=[default_queue]) as worker:
        deliver_task.delay(987654321)  # would go to a receiver; it must not reach this worker
        sweep_due_checks_task.delay()
        worker.wait_for(lambda: (SWEEP, "SUCCESS") in worker.finished, what="the sweep")
        assert DELIVER not in [name for name, _ in worker.finished]
        assert waiting_in(delivery_queue) == 1

    # A worker of both queues (run_worker purges first, so the delivery is sent again).
    with run_worker() as worker:
        deliver_task.delay(987654321)
        sweep_due_checks_task.delay()
        worker.wait_for(
            lambda: {DELIVER, SWEEP} <= {name for name, _ in worker.finished},
            what="a delivery and a sweep",
        )
