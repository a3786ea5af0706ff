"""The embedded broker (config/filesystem_broker.py): a consumer polling the folder while
producers write never takes a half-written message.

With kombu's own transport, `race(tmp_path, "kombu.transport.filesystem:Transport")` lost
messages to JSONDecodeError in most runs tried (the error that stopped the embedded worker);
should that ever stop, kombu has fixed it and our transport can go."""

import json
import os
import threading
import time
from queue import Empty

from celery.worker import state as worker_state
from kombu import Connection, Consumer, Queue

from config.celery import app as celery_app
from config.filesystem_broker import Transport

MESSAGES = 200
# Large bodies widen the moment between creating a file and finishing writing it.
PADDING = "x" * 256 * 1024


def connect(folder, transport=None):
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    return Connection("filesystem://", transport=transport, transport_options=options)


def race(folder, transport=None) -> tuple[list, list]:
    """One thread writes MESSAGES messages while this one reads as fast as it can."""
    (folder / "control").mkdir()
    received, errors = [], []
    with connect(folder, transport) as producer, connect(folder, transport) as consumer:
        out, inbox = producer.default_channel, consumer.default_channel

        def produce():
            for n in range(MESSAGES):
                out._put("q", {"n": n, "padding": PADDING})

        writer = threading.Thread(target=produce)
        writer.start()
        while len(received) + len(errors) < MESSAGES:
            try:
                received.append(inbox._get("q")["n"])
            except Empty:
                continue
            except json.JSONDecodeError as exc:
                errors.append(exc)
        writer.join()
    assert not [name for name in os.listdir(folder) if name.endswith((".msg", ".part"))]
    return errors, received


def test_filesystem_urls_use_the_atomic_transport(tmp_path):
    with connect(tmp_path) as connection:
        assert isinstance(connection.transport, Transport)
    with celery_app.connection_for_write() as connection:
        if connection.as_uri().startswith("filesystem"):
            assert isinstance(connection.transport, Transport)


def test_consumer_never_reads_a_half_written_message(tmp_path):
    errors, received = race(tmp_path)
    assert errors == []
    assert sorted(received) == list(range(MESSAGES))


def wait_for_nothing(folder, timeout: float) -> float:
    """Seconds a consumer's drain_events(timeout) took on an empty queue (it must time out)."""
    (folder / "control").mkdir(parents=True)
    with connect(folder, Transport) as connection:
        queue = Queue("idle", channel=connection.default_channel)
        queue.declare()
        with Consumer(connection, queues=[queue], callbacks=[lambda body, message: None]):
            started = time.monotonic()
            try:
                connection.drain_events(timeout=timeout)
            except TimeoutError:
                return time.monotonic() - started
    raise AssertionError("a message arrived on an empty queue")


def test_an_idle_wait_lasts_its_timeout_unless_the_worker_is_asked_to_stop(tmp_path, monkeypatch):
    """Issue 14: `dev.py run` stops in 2 s. Celery's loop for this transport waits 2 s at a
    time; once Ctrl-C has set the worker's stop flag (to the exit code, 0), the wait ends
    within a slice, and any other wait still lasts its whole timeout."""
    assert wait_for_nothing(tmp_path / "a", timeout=1.0) >= 1.0
    monkeypatch.setattr(worker_state, "should_stop", 0)
    assert wait_for_nothing(tmp_path / "b", timeout=2.0) < 1.0
