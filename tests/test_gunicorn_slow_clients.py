"""Slow clients must not stall pings (issue 14): the production server command (gunicorn with
config/gunicorn.py, as the Dockerfile and docker-compose.yml start it) on a free port, several
clients dripping a request, and normal pings still answered at once.

Before config/gunicorn.py, gunicorn ran sync workers: three dripping clients held every worker
and a ping waited 30 s (the worker timeout). The client timeout below is far shorter than that
and far longer than a ping takes, so the test tells the two apart on a busy machine without
measuring time.
"""

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from apps.checks.models import Ping
from tests.conftest import requires_postgres
from tests.live import fetch

ROOT = Path(__file__).resolve().parent.parent
# More than the sync workers a default deployment had (WEB_CONCURRENCY=3), fewer than the
# threads the production config gives (2 workers x 16 threads).
SLOW_CLIENTS = 8
PING_TIMEOUT = 5.0
APP = "config.wsgi:application"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def gunicorn_url(transactional_db, tmp_path):
    """The Dockerfile's command, on the test database, until the test ends."""
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
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:config.gunicorn", APP],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: a full pipe would block the server's logging.
        stderr=(tmp_path / "gunicorn.log").open("wb"),
    )
    try:
        wait_until_listening(server, port, tmp_path / "gunicorn.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_listening(server: subprocess.Popen, port: int, log: Path) -> None:
    """Returns once gunicorn answers a request (it loads Django first); fails if it exits."""
    unknown = "/ping/00000000-0000-0000-0000-000000000000"
    for _ in range(600):
        try:
            reply = fetch(f"http://127.0.0.1:{port}", "GET", unknown, timeout=60)
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
    sock = socket.create_connection(("127.0.0.1", port), timeout=PING_TIMEOUT)
    if in_headers:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag".encode())
    else:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
        sock.sendall(head.encode() + b"first bytes of a long body")
    return sock


def drip(sock: socket.socket, data: bytes) -> None:
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
    finally:
        sock.settimeout(PING_TIMEOUT)


@requires_postgres
def test_slow_clients_do_not_stall_pings_on_the_production_server(gunicorn_url, check):
    path = f"/ping/{check.ping_token}"
    slow = [
        open_slow_client(gunicorn_url, path, in_headers=i % 2 == 0) for i in range(SLOW_CLIENTS)
    ]
    try:
        # Each dripping client has been given a thread: the server is reading from all of them.
        for sock in slow:
            drip(sock, b"x")
        answers = []
        for n in range(5):
            reply = fetch(
                gunicorn_url, "POST", f"{path}/log", body=b"normal %d" % n, timeout=PING_TIMEOUT
            )
            answers.append((reply.status, reply.body))
            for sock in slow:  # they keep dripping meanwhile
                drip(sock, b"y")
        assert answers == [(200, b"OK")] * 5
        assert all(still_waiting(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()
    assert sorted(
        bytes(b) for b in Ping.objects.filter(owner=check).values_list("body", flat=True)
    ) == [b"normal %d" % n for n in range(5)]


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
