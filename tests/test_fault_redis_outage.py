"""A Redis outage while pings and an alert flow (issue 14): every ping answered and stored, the
alert told exactly once.

Everything is real and of the test's own: a redis-server on a free port (no persistence, so a
restart loses every queued message, as a crash does), and Tocsin's production processes
against it and the test database: gunicorn with config/gunicorn.py, a Celery worker and Celery
beat (a sweep every second). The alert goes out by email to a real SMTP sink (aiosmtpd).

Pings never touch Redis (they are one UPDATE and one INSERT), so they must all be answered
while Redis is down. The failure ping arrives during the outage; the sweep that judges it runs
once beat and the worker are back on the new Redis, and whatever was queued before the stop is
gone: the outbox and the beat's scans must still tell the alert, and only once.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from apps.checks.models import Ping
from apps.incidents.models import Incident
from apps.notifications.models import Delivery
from tests.factories import CheckFactory
from tests.live import fetch

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """This test's database for the subprocesses: PostgreSQL, or the suite's SQLite file."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


def wait_until(condition, *, timeout: float, what: str, logs: list[Path] = ()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}" for log in logs)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


class OwnRedis:
    """A redis-server of this test: started, stopped and started again on the same port."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"],
                *["--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            ],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, timeout=30, what="redis-server to answer")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


class Sink:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


class PingFlow:
    """Sends a log ping with a numbered body every 50 ms, from a thread, until stopped."""

    def __init__(self, base_url: str, token):
        self.base_url, self.path = base_url, f"/ping/{token}/log"
        self.answers: list[tuple[bytes, int | str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            body = b"ping %d" % n
            try:
                reply = fetch(self.base_url, "POST", self.path, body=body, timeout=10)
                self.answers.append((body, reply.status))
            except OSError as exc:
                self.answers.append((body, repr(exc)))
            n += 1
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)


def test_redis_stopped_and_started_while_pings_and_an_alert_flow(team, owner, tmp_path):
    flowing = CheckFactory(team=team, name="flowing")
    failing = CheckFactory(team=team, name="failing")
    redis = OwnRedis(tmp_path)
    sink = Sink()
    smtp_port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=smtp_port, ready_timeout=10)
    web_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis.url,
        "DEBUG": "0",
        "SECRET_KEY": "a-test-key-that-is-long-enough-for-the-settings-check-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": f"http://127.0.0.1:{web_port}",
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "GUNICORN_CMD_ARGS": "",
        "WEB_CONCURRENCY": "1",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_TIMEOUT": "5",
        "SWEEP_INTERVAL": "1",
        "NOTIFICATION_GROUP_WAIT": "0",
        "NOTIFICATION_RETRY_BASE": "1",
        "TOCSIN_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    python = [sys.executable, "-m"]
    logs = [tmp_path / name for name in ("web.log", "worker.log", "beat.log")]
    processes = []
    redis.start()
    smtp.start()
    try:
        processes.append(
            start(
                [*python, "gunicorn", "-c", "python:config.gunicorn", "config.wsgi"], env, logs[0]
            )
        )
        processes.append(
            start(
                [*python, "celery", "-A", "config", "worker", "-l", "info", "-c", "2"], env, logs[1]
            )
        )
        processes.append(
            start(
                [*python, "celery", "-A", "config", "beat", "-s", str(tmp_path / "schedule")],
                env,
                logs[2],
            )
        )
        base_url = f"http://127.0.0.1:{web_port}"

        def web_answers():
            with contextlib.suppress(OSError):
                return fetch(base_url, "GET", "/healthz", timeout=5).status == 200
            return False

        # 200 once the database answers and a sweep ran: beat, worker and Redis all work.
        wait_until(web_answers, timeout=180, what="/healthz 200", logs=logs)

        with PingFlow(base_url, flowing.ping_token) as flow:
            time.sleep(1)
            redis.stop()
            outage_started = len(flow.answers)
            reply = fetch(base_url, "POST", f"/ping/{failing.ping_token}/fail", body=b"boom")
            assert (reply.status, reply.body) == (200, b"OK")
            time.sleep(4)  # pings go on meanwhile
            during_outage = len(flow.answers) - outage_started
            redis.start()
            # The alert: judged by a sweep once beat and the worker are back, then emailed.
            wait_until(lambda: sink.received, timeout=90, what="the alert email", logs=logs)
            time.sleep(2)
        # Long enough for a second copy to show: beat's retry scan runs every second and a
        # delivery's lease (OUTBOX_STALE_AFTER, 15 s) would lapse if a send had been lost.
        time.sleep(16)
    finally:
        for proc in processes:
            stop(proc)
        smtp.stop()
        redis.stop()

    assert during_outage >= 20, flow.answers[outage_started:]
    assert {status for _, status in flow.answers} == {200}, [a for a in flow.answers if a[1] != 200]
    stored = Ping.objects.filter(owner=flowing).values_list("body", flat=True)
    assert sorted(bytes(b) for b in stored) == sorted(body for body, _ in flow.answers)
    incident = Incident.objects.get(owner=failing)
    (delivery,) = Delivery.objects.filter(recipient=owner)
    assert delivery.status == Delivery.Status.SENT
    ((rcpt_tos, content),) = sink.received
    assert rcpt_tos == [owner.email]
    assert b"Subject: [Tocsin] DOWN failing" in content
    assert incident.state == Incident.State.TRIGGERED
