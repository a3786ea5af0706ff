"""Slow clients beyond gunicorn's threads (issue 14): deploy/nginx.conf in front of the
production server command absorbs them.

gunicorn's gthread workers give every connection that has sent something a thread until its
request is read, and have no read timeout: more slow clients than WEB_CONCURRENCY x
WEB_THREADS (2 x 16 here, as in docker-compose.yml) hold every thread. The control case sends
that many straight at gunicorn and the ping stalls. The same clients against a real nginx
running the repository's config (ports and upstream rewritten for the test, temp files in the
test's directory) wait in nginx's event loop, and normal pings pass straight through, stored
with the address nginx saw, not one a client wrote in X-Forwarded-For.
"""

import contextlib
import getpass
import http.client
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from apps.checks.models import Ping
from tests.test_gunicorn_slow_clients import (
    ANSWERED_WITHIN,
    PRODUCTION,
    ROOT,
    drip,
    free_port,
    gunicorn,
    open_slow_client,
    serving,
    still_waiting,
    timed_ping,
    warm_up,
)

NGINX = "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else shutil.which("nginx")
# More than the 32 threads of the production command (2 workers x 16), with room for one
# worker to accept more than its share.
SLOW_CLIENTS = 80
# Pings come from another loopback address than the test's other sockets, so the stored
# address shows which hop it came from: nginx and gunicorn talk over 127.0.0.1.
CLIENT_ADDRESS = "127.0.0.2"
FORGED = "203.0.113.66"


def render_config(template: str, *, listen_port: int, upstream: str, prefix: Path) -> str:
    """deploy/nginx.conf for a test: its own port and upstream, this user, temp files under
    `prefix`. Fails if the config no longer has the lines it rewrites."""
    rewrites = {
        "listen 8000;": f"listen 127.0.0.1:{listen_port};",
        "server web:8000;": f"server {upstream};",
        # Ignored (with a warning) unless nginx starts as root; as root, workers of this
        # user can read and write the test's temp directories.
        "user nginx;": f"user {getpass.getuser()};",
        "http {": "http {\n"
        + "".join(
            f"    {kind}_temp_path {prefix / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    }
    for line, replacement in rewrites.items():
        assert template.count(line) == 1, f"deploy/nginx.conf has no single {line!r}"
        template = template.replace(line, replacement)
    return template


@contextlib.contextmanager
def nginx(upstream_url: str, prefix: Path):
    """A real nginx running deploy/nginx.conf in front of `upstream_url`, until the block ends."""
    port = free_port()
    config = prefix / "nginx.conf"
    config.write_text(
        render_config(
            (ROOT / "deploy" / "nginx.conf").read_text(),
            listen_port=port,
            upstream=upstream_url.removeprefix("http://"),
            prefix=prefix,
        )
    )
    log = prefix / "nginx.log"
    command = [NGINX, "-p", str(prefix), "-c", str(config), "-e", str(log)]
    test = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert test.returncode == 0, test.stderr
    server = subprocess.Popen(
        [*command, "-g", f"daemon off; pid {prefix / 'nginx.pid'};"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    with serving(server, f"http://127.0.0.1:{port}", log) as base_url:
        yield base_url


def ping_from(address: str, base_url: str, path: str, body: bytes, *, timeout: float):
    """(status, body, seconds) of one ping sent from `address` with a forged X-Forwarded-For."""
    port = int(base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(address, 0)
    )
    started = time.monotonic()
    try:
        conn.request("POST", path, body=body, headers={"X-Forwarded-For": FORGED})
        response = conn.getresponse()
        return response.status, response.read(), time.monotonic() - started
    except TimeoutError:
        return None, None, time.monotonic() - started
    finally:
        conn.close()


def open_slow_clients(base_url: str, path: str) -> list:
    # Half stall in the middle of their headers, half after the first bytes of a body.
    slow = [open_slow_client(base_url, path, in_headers=n % 2 == 0) for n in range(SLOW_CLIENTS)]
    drip(slow, b"x")
    return slow


@pytest.mark.slow
@pytest.mark.skipif(NGINX is None, reason="no nginx binary (apt-get install nginx)")
@pytest.mark.django_db(transaction=True)
def test_behind_nginx_more_slow_clients_than_threads_do_not_stall_pings(
    check, tmp_path, monkeypatch
):
    # What docker-compose.yml gives web; the gunicorn helper passes the environment on.
    monkeypatch.setenv("TRUST_PROXY_FORWARDED_FOR", "true")
    path = f"/ping/{check.ping_token}"
    with (
        gunicorn(PRODUCTION, tmp_path / "gunicorn.log") as upstream,
        nginx(upstream, tmp_path) as base_url,
    ):
        warm_up(base_url, path)
        slow = open_slow_clients(base_url, path)
        try:
            pings = []
            for n in range(5):
                pings.append(
                    ping_from(CLIENT_ADDRESS, base_url, f"{path}/log", b"normal %d" % n, timeout=5)
                )
                drip(slow, b"y")  # they keep dripping meanwhile
            # nginx still holds every slow client: none was refused or dropped to make room.
            assert all(still_waiting(sock) for sock in slow)
        finally:
            for sock in slow:
                sock.close()
    assert [(status, body) for status, body, _ in pings] == [(200, b"OK")] * 5
    slowest = max(seconds for _, _, seconds in pings)
    assert slowest < ANSWERED_WITHIN, f"a ping took {slowest:.2f} s"
    stored = Ping.objects.filter(owner=check).values_list("body", "remote_addr")
    assert sorted((bytes(b), a) for b, a in stored if bytes(b).startswith(b"normal")) == [
        (b"normal %d" % n, CLIENT_ADDRESS) for n in range(5)
    ]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_same_slow_clients_straight_at_gunicorn_stall_pings(check, tmp_path):
    """The control case: without it the test above could pass without nginx doing anything."""
    path = f"/ping/{check.ping_token}"
    with gunicorn(PRODUCTION, tmp_path / "gunicorn.log") as base_url:
        warm_up(base_url, path)
        slow = open_slow_clients(base_url, path)
        try:
            # Three times the bar: a stall, not a busy machine.
            status, _, seconds = timed_ping(
                base_url, f"{path}/log", b"stalled", timeout=3 * ANSWERED_WITHIN
            )
        finally:
            for sock in slow:
                sock.close()
    assert status is None, f"answered {status} in {seconds:.2f} s: gunicorn had a free thread"
    assert seconds >= 3 * ANSWERED_WITHIN


def test_compose_publishes_only_the_proxy_and_mounts_this_config():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert compose.count('- "${PORT:-8000}:8000"') == 1
    proxy = compose[compose.index("\n  proxy:") : compose.index("\n  worker:")]
    assert '- "${PORT:-8000}:8000"' in proxy
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy
    assert 'TRUST_PROXY_FORWARDED_FOR: "true"' in compose
