"""A real Celery worker in a thread of the test process, for tests that cross the queue.

    @pytest.mark.django_db(transaction=True)
    def test_delivery_on_a_real_worker(celery_worker, ...):
        with celery_worker.exclusive():
            sweep_due_checks(now=...)        # enqueues delivery on commit
        celery_worker.wait_for(lambda: len(mail.outbox) == 2, what="two emails")

The worker is config.celery.app's own (`celery.contrib.testing.worker.start_worker`, solo pool:
tasks run one at a time in the worker's thread). It consumes the configured broker (Redis
when REDIS_URL is set, kombu's filesystem transport otherwise) from this test session's own
queue (tests/conftest.py names it), which is purged before the worker starts, so messages left
by earlier tests never reach it. locmem email works: mail.outbox belongs to this process.

Like pytest-django's live_server, the fixture implies a transactional database: the worker's
thread opens its own connection (Celery's Django fix-up closes it after each task) and sees
only committed rows, on PostgreSQL and on the suite's file-backed SQLite test database alike
(tests/conftest.py); both then run freely (no lock is taken). Only an in-memory SQLite
database, which exists only inside the test thread's connection, would make the worker borrow
that connection, as tests/live.py's server threads do; the test and the worker must then take
turns: `exclusive()` holds the worker between two tasks, and `wait_for` evaluates its
condition there.
"""

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from django.db import connections

from config.celery import app as celery_app

DEFAULT_TIMEOUT = 30.0


class LiveWorker:
    """Handle on the running worker: take turns with it, wait for outcomes, see what ran."""

    def __init__(self, worker, borrowed: dict):
        self.worker = worker
        self._borrowed = borrowed
        self._turn = threading.RLock() if borrowed else None
        # (task name, state) of every task the worker finished, in order: for failure messages.
        self.finished: list[tuple[str, str]] = []

    def exclusive(self) -> AbstractContextManager:
        """While held, the worker starts no task (a no-op when it has its own connection)."""
        return self._turn if self._turn is not None else nullcontext()

    def wait_for(
        self, condition: Callable[[], Any], *, timeout: float = DEFAULT_TIMEOUT, what: str = ""
    ) -> Any:
        """Poll `condition` (between two tasks) until it returns something truthy; return it.
        Fails the test with `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self.exclusive():
                value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(
                    f"timed out after {timeout:.0f} s waiting for {what or condition!r}; "
                    f"the worker finished {self.finished}"
                )
            time.sleep(0.05)

    # Signal receivers. With the solo pool they run in the worker's thread, around each task.
    def _before_task(self, **kwargs) -> None:
        if self._turn is not None:
            self._turn.acquire()
        for alias, connection in self._borrowed.items():
            connections[alias] = connection

    def _after_task(self, task=None, state=None, **kwargs) -> None:
        self.finished.append((getattr(task, "name", "?"), state or "?"))
        if self._turn is not None:
            self._turn.release()


@celery_app.task(name="tests.worker.nudge", ignore_result=True)
def nudge() -> str:
    """Wakes a worker that is stopping. kombu's filesystem transport has no push: the worker
    polls with a 2 s timeout, and checks the stop flag only between two polls, which made each
    stop take up to 4 s. A message ends a poll at once."""
    return "nudged"


def _borrowed_connections() -> dict:
    return {
        conn.alias: conn
        for conn in connections.all()
        if conn.vendor == "sqlite" and conn.is_in_memory_db()
    }


def session_queue_names(app=celery_app) -> list[str]:
    """This session's queues (tests/conftest.py names them): the default one and deliveries'."""
    return [queue.name for queue in app.conf.task_queues]


def _purge_queue(app) -> None:
    with app.connection_for_write() as connection:
        for name in session_queue_names(app):
            connection.default_channel.queue_purge(name)


def _keep_logging_as_it_is(**kwargs) -> None:
    """A setup_logging receiver: its presence tells Celery not to reconfigure the root logger
    (it would drop pytest's handlers and raise the level to ERROR for the rest of the run)."""


@contextmanager
def run_worker(app=celery_app, queues: list[str] | None = None) -> Iterator[LiveWorker]:
    """A worker consuming `queues` (default: every queue of the session)."""
    borrowed = _borrowed_connections()
    for connection in borrowed.values():
        connection.inc_thread_sharing()
    _purge_queue(app)
    warnings_were_captured = logging._warnings_showwarning is not None  # type: ignore[attr-defined]
    live: LiveWorker | None = None
    signals.setup_logging.connect(_keep_logging_as_it_is)
    transport_options = app.conf.broker_transport_options
    if app.conf.broker_url.startswith("filesystem"):
        # kombu's filesystem transport polls its folder once a second by default: fine for a
        # deployment, slow for a test that waits for every hop. Only the worker's connection,
        # made while the worker starts, polls faster.
        app.conf.broker_transport_options = {**transport_options, "polling_interval": 0.02}
    try:
        # Always named: a worker's queue selection stays on the app, so a later worker must
        # not inherit an earlier one's narrower choice.
        queues = queues or session_queue_names(app)
        with start_worker(
            app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=queues
        ) as w:
            app.conf.broker_transport_options = transport_options
            live = LiveWorker(w, borrowed)
            signals.task_prerun.connect(live._before_task, weak=False)
            signals.task_postrun.connect(live._after_task, weak=False)
            try:
                yield live
            finally:
                # What start_worker sets when it stops the worker, set early so that the
                # nudges find the flag up (one ends the current poll, one the last).
                worker_state.should_terminate = 0
                nudge.delay()
                nudge.delay()
        # The worker's thread has ended: no task can run on the borrowed connection any more.
    finally:
        if live is not None:
            signals.task_prerun.disconnect(live._before_task)
            signals.task_postrun.disconnect(live._after_task)
        app.conf.broker_transport_options = transport_options
        signals.setup_logging.disconnect(_keep_logging_as_it_is)
        if not warnings_were_captured:
            logging.captureWarnings(False)
        # Whatever the stopped worker left (a retry it held, a nudge it did not need) goes too.
        _purge_queue(app)
        for connection in borrowed.values():
            connection.dec_thread_sharing()


@pytest.fixture(scope="session", autouse=True)
def _discard_session_queue() -> Iterator[None]:
    """Tests that run on_commit callbacks publish tasks that no worker consumes; drop this
    session's queue at the end so that Redis (or var/broker) does not keep them."""
    yield
    try:
        with celery_app.connection_for_write() as connection:
            channel = connection.default_channel
            for name in session_queue_names():
                channel.queue_purge(name)
                channel.queue_delete(name)
    except Exception as exc:  # the broker is down: nothing to tidy, and no test to fail
        warnings.warn(f"could not drop the test queue: {exc}", stacklevel=1)


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[LiveWorker]:
    """A real Celery worker consuming this session's queue (see the module docstring)."""
    with run_worker() as live:
        yield live
