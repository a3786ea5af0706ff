"""A real HTTP server in a thread that serves the production WSGI app (config.wsgi.application:
the ping fast path in front of Django), for tests that must cross a real socket.

    def test_ping_over_http(live_app_url, check):
        reply = fetch(live_app_url, "GET", f"/ping/{check.ping_token}")
        assert reply.status == 200

`live_app_url` implies a transactional database (like pytest-django's `live_server`): the
server threads use their own connections, so they only see committed rows. On SQLite too: the
suite's SQLite test database is a file (tests/conftest.py). Only an in-memory SQLite database,
which exists only inside its connection, would make the server threads borrow the test thread's
connection, as Django's LiveServerTestCase does; requests must then not run concurrently.

`fetch` uses http.client, which sends the path byte for byte (no dot-segment normalisation,
any method, any header), so hostile requests reach the server as written.
"""

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import pytest
from django.db import connections


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    # Non-daemon request threads that server_close() joins: when the fixture ends no request is
    # still running, so no thread holds a database connection while the test database is
    # flushed or dropped.
    daemon_threads = False
    block_on_close = True
    # socketserver's default listen backlog is 5: a burst of concurrent clients gets resets.
    request_queue_size = 128
    connections_override: dict = {}

    def process_request_thread(self, request, client_address):
        for alias, connection in self.connections_override.items():
            connections[alias] = connection
        try:
            super().process_request_thread(request, client_address)
        finally:
            # Each request thread opened its own connections (unless borrowed): close them
            # before the thread ends, as Django's own test server does.
            for connection in connections.all(initialized_only=True):
                if connection.alias not in self.connections_override:
                    connection.close()


def _borrowed_connections() -> dict:
    """The test thread's in-memory SQLite connections: the only way other threads see that
    database."""
    return {
        conn.alias: conn
        for conn in connections.all()
        if conn.vendor == "sqlite" and conn.is_in_memory_db()
    }


@contextmanager
def serve_wsgi(app) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) in a background thread; yield the base URL."""
    server = _ThreadingWSGIServer(("127.0.0.1", 0), _QuietHandler)
    server.set_app(app)
    server.connections_override = _borrowed_connections()
    for connection in server.connections_override.values():
        connection.inc_thread_sharing()
    # A short poll interval: shutdown() waits for the loop to notice, once per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="live-wsgi", daemon=True
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        for connection in server.connections_override.values():
            connection.dec_thread_sharing()


@pytest.fixture
def live_app_url(transactional_db) -> Iterator[str]:
    """Base URL of config.wsgi.application served over real HTTP (see the module docstring)."""
    from config.wsgi import application

    with serve_wsgi(application) as base_url:
        yield base_url


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def fetch(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Reply:
    """One HTTP request with the path sent exactly as given. A body gets a Content-Length
    unless the headers already frame it (Transfer-Encoding or Content-Length)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        headers = dict(headers or {})
        framed = {name.lower() for name in headers} & {"content-length", "transfer-encoding"}
        if body is not None and not framed:
            headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, response.reason, response.headers, response.read())
    finally:
        conn.close()
