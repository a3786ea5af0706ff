"""Slow clients must not stall pings (issue 14): the production server command (gunicorn with
config/gunicorn.py, as the Dockerfile and docker-compose.yml start it) on a free port, slow
clients holding connections open (half in the middle of their headers, half dripping a POST
body), and normal pings still answered in under a second.

The same attack against the serving setup issue 14 found (`--worker-class sync --workers 2`)
must stall the ping: each sync worker serves one connection from its first byte to its last,
so two slow clients hold both and the ping waits for gunicorn's 30 s worker timeout. That case
proves the attack is real, and that the production case could fail.

The slow clients outnumber the old setup's workers (2 here, 3 in the issue) and stay within
the production setup's threads per worker (16): a gthread worker gives each connection that
has sent something a thread until its request is read, so a thread pool can be exhausted too,
by more slow connections than WEB_CONCURRENCY x WEB_THREADS; config/gunicorn.py says what to
put in front for that (a buffering proxy).
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from apps.checks.models import Ping
from tests.live import fetch

ROOT = Path(__file__).resolve().parent.parent
# More than the old setup's sync workers, no more than one gthread worker's threads: the
# listening socket is shared, and one worker may accept every slow client.
SLOW_CLIENTS = 12
ANSWERED_WITHIN = 1.0  # seconds, the bar
APP = "config.wsgi:application"
PRODUCTION = ["--config", "python:config.gunicorn"]
# What issue 14 found: gunicorn's default sync workers, two of them.
OLD_SYNC_WORKERS = ["--worker-class", "sync", "--workers", "2", "--timeout", "30"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """The URL of this test's database, for the server subprocess: PostgreSQL, or the file of
    the suite's SQLite test database (tests/conftest.py)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


@contextlib.contextmanager
def gunicorn(options: list[str], log: Path):
    """gunicorn with `options` on the test database and a free port, until the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": "a-test-key-that-is-long-enough-for-the-settings-check-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_CMD_ARGS": "",
    }
    env.pop("WEB_THREADS", None)
    bind = [] if options == PRODUCTION else ["--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *options, *bind, APP],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: a full pipe would block the server's logging.
        stderr=log.open("wb"),
    )
    with serving(server, f"http://127.0.0.1:{port}", log) as base_url:
        yield base_url


@contextlib.contextmanager
def serving(server: subprocess.Popen, base_url: str, log: Path):
    """`base_url` once the started `server` answers there; the server is stopped on exit."""
    try:
        wait_until_listening(server, base_url, log)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_listening(server: subprocess.Popen, base_url: str, log: Path) -> None:
    """Returns once gunicorn answers a request (it loads Django first); fails if it exits."""
    unknown = "/ping/00000000-0000-0000-0000-000000000000"
    for _ in range(600):
        try:
            reply = fetch(base_url, "GET", unknown, timeout=60)
        except ConnectionRefusedError:
            # Not listening yet. Waiting on the process returns at once if it died.
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.1)
            if server.poll() is not None:
                pytest.fail(f"gunicorn exited: {log.read_text(errors='replace')}")
            continue
        assert reply.status == 404, reply
        return
    pytest.fail("gunicorn did not start listening")


def open_slow_client(base_url: str, path: str, *, in_headers: bool) -> socket.socket:
    """A client that sent part of a request and stalls: in the middle of its headers, or
    after its headers with most of a promised body missing."""
    port = int(base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if in_headers:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag".encode())
    else:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
        sock.sendall(head.encode() + b"first bytes of a long body")
    return sock


def drip(slow: list[socket.socket], data: bytes) -> None:
    for sock in slow:
        sock.sendall(data)


def still_waiting(sock: socket.socket) -> bool:
    """The server has neither answered nor closed this connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1) is None
    except BlockingIOError:
        return True
    except OSError:
        return False


def timed_ping(base_url: str, path: str, body: bytes, *, timeout: float):
    """(status, body, seconds) of one normal ping; (None, None, seconds) if it timed out."""
    started = time.monotonic()
    try:
        reply = fetch(base_url, "POST", path, body=body, timeout=timeout)
    except TimeoutError:
        return None, None, time.monotonic() - started
    return reply.status, reply.body, time.monotonic() - started


def warm_up(base_url: str, path: str) -> None:
    """A few pings first, so that the timed ones measure serving, not each worker's first
    database connection on a busy machine."""
    for n in range(6):
        assert fetch(base_url, "POST", f"{path}/log", body=b"warm-up %d" % n).status == 200


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_slow_clients_do_not_stall_pings_on_the_production_server(check, tmp_path):
    path = f"/ping/{check.ping_token}"
    with gunicorn(PRODUCTION, tmp_path / "gunicorn.log") as base_url:
        warm_up(base_url, path)
        slow = [
            open_slow_client(base_url, path, in_headers=n % 2 == 0) for n in range(SLOW_CLIENTS)
        ]
        try:
            # Each dripping client has been given a thread: the server is reading from all.
            drip(slow, b"x")
            pings = []
            for n in range(5):
                pings.append(timed_ping(base_url, f"{path}/log", b"normal %d" % n, timeout=5))
                drip(slow, b"y")  # they keep dripping meanwhile
            assert all(still_waiting(sock) for sock in slow)
        finally:
            for sock in slow:
                sock.close()
    assert [(status, body) for status, body, _ in pings] == [(200, b"OK")] * 5
    slowest = max(seconds for _, _, seconds in pings)
    assert slowest < ANSWERED_WITHIN, f"a ping took {slowest:.2f} s"
    stored = [bytes(b) for b in Ping.objects.filter(owner=check).values_list("body", flat=True)]
    assert sorted(b for b in stored if b.startswith(b"normal")) == [
        b"normal %d" % n for n in range(5)
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_same_slow_clients_stall_pings_on_the_old_sync_workers(check, tmp_path):
    """The control case: without it the test above could pass on any setup."""
    path = f"/ping/{check.ping_token}"
    with gunicorn(OLD_SYNC_WORKERS, tmp_path / "gunicorn.log") as base_url:
        warm_up(base_url, path)
        slow = [
            open_slow_client(base_url, path, in_headers=n % 2 == 0) for n in range(SLOW_CLIENTS)
        ]
        try:
            drip(slow, b"x")
            # Three times the bar: a stall, not a busy machine.
            status, _, seconds = timed_ping(
                base_url, f"{path}/log", b"stalled", timeout=3 * ANSWERED_WITHIN
            )
        finally:
            for sock in slow:
                sock.close()
    assert status is None, f"answered {status} in {seconds:.2f} s: the sync workers were free"
    assert seconds >= 3 * ANSWERED_WITHIN


def test_the_production_config_refuses_a_malformed_thread_count(tmp_path):
    env = {**os.environ, "WEB_THREADS": "many"}
    result = subprocess.run(
        [sys.executable, "-c", "import config.gunicorn"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "WEB_THREADS must be a whole number, not 'many'" in result.stderr


def test_docker_files_start_gunicorn_with_the_production_config():
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert '"--config", "python:config.gunicorn"' in dockerfile
    assert "gunicorn --config python:config.gunicorn config.wsgi:application" in compose
