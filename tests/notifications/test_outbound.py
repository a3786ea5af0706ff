"""Outbound HTTP against a real local server: timeouts, answers, and the private-address guard."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.notifications.outbound import ConnectionPool, OutboundError, address_allowed, post


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.server.received.append((self.path, dict(self.headers), self.rfile.read(length)))
        status = {"/ok": 200, "/missing": 404, "/broken": 500, "/busy": 429}.get(self.path, 200)
        if self.path == "/slow":
            # Never answers while the test runs: the fixture lets it go at the end.
            self.server.released.wait(60)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"answer")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.received = []
    httpd.released = threading.Event()
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.released.set()
    httpd.shutdown()


@pytest.fixture
def allow_loopback(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True


def test_post_delivers_body_and_headers(server, allow_loopback):
    httpd, base = server
    response = post(f"{base}/ok?x=1", body=b"{}", headers={"X-Test": "yes"}, timeout=2)
    assert response.status == 200 and response.body == b"answer"
    path, headers, body = httpd.received[0]
    assert path == "/ok?x=1" and body == b"{}" and headers["X-Test"] == "yes"


@pytest.mark.parametrize(
    ("path", "permanent"), [("/missing", True), ("/broken", False), ("/busy", False)]
)
def test_error_answers_say_whether_to_retry(server, allow_loopback, path, permanent):
    _, base = server
    with pytest.raises(OutboundError) as raised:
        post(f"{base}{path}", body=b"", headers={}, timeout=2)
    assert raised.value.permanent is permanent


def test_a_server_that_never_answers_times_out(server, allow_loopback):
    _, base = server
    started = time.monotonic()
    with pytest.raises(OutboundError) as raised:
        post(f"{base}/slow", body=b"", headers={}, timeout=0.5)
    # The server never answers: returning at all is the timeout at work; the bound is only
    # far below the server's 60 s, with room for a busy machine.
    assert time.monotonic() - started < 10
    assert not raised.value.permanent


def test_loopback_is_refused_by_default(server, settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    httpd, base = server
    with pytest.raises(OutboundError) as raised:
        post(f"{base}/ok", body=b"", headers={}, timeout=2)
    assert raised.value.permanent and "refused" in str(raised.value)
    assert httpd.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://localhost/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_private_addresses_are_refused(settings, url):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    with pytest.raises(OutboundError) as raised:
        post(url, body=b"", headers={}, timeout=1)
    assert raised.value.permanent


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "gopher://x"]
)
def test_other_schemes_are_refused(url):
    with pytest.raises(OutboundError) as raised:
        post(url, body=b"", headers={}, timeout=1)
    assert raised.value.permanent


def test_public_addresses_are_allowed(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    assert address_allowed("93.184.216.34")
    assert address_allowed("2606:2800:220:1:248:1893:25c8:1946")
    assert not address_allowed("100.64.0.1")  # carrier-grade NAT is not public either


# Every IPv6 form that leads to an IPv4 host, with the host inside: the embedded address
# decides (issue 14: Python's is_global calls 2002:7f00:1:: public).
EMBEDDED_IPV4_FORMS = [
    ("6to4-loopback", "2002:7f00:1::", False),
    ("6to4-private", "2002:a00:1::1", False),
    ("6to4-metadata", "2002:a9fe:a9fe::", False),
    ("6to4-cgnat", "2002:6440:1::", False),
    ("6to4-public", "2002:808:808::1", True),
    ("nat64-loopback", "64:ff9b::7f00:1", False),
    ("nat64-private", "64:ff9b::a00:1", False),
    ("nat64-metadata", "64:ff9b::169.254.169.254", False),
    ("nat64-public", "64:ff9b::8.8.8.8", True),
    ("nat64-local-use-public-inside", "64:ff9b:1::808:808", False),
    ("nat64-local-use-private-inside", "64:ff9b:1::a00:1", False),
    ("teredo-client-loopback", "2001:0:4136:e378:8000:63bf:80ff:fffe", False),
    ("teredo-client-private", "2001:0:4136:e378:8000:63bf:3f57:fef5", False),
    ("teredo-server-private", "2001:0:a00:1:8000:63bf:f7f7:f7f7", False),
    ("teredo-both-public", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", True),
    ("mapped-loopback", "::ffff:127.0.0.1", False),
    ("mapped-private", "::ffff:192.168.1.1", False),
    ("mapped-metadata", "::ffff:169.254.169.254", False),
    ("mapped-public", "::ffff:8.8.8.8", True),
    ("translated-loopback", "::ffff:0:127.0.0.1", False),
    ("translated-public", "::ffff:0:8.8.8.8", True),
    ("compatible-loopback", "::127.0.0.1", False),
    ("compatible-private", "::10.0.0.1", False),
    ("compatible-public", "::8.8.8.8", False),  # deprecated form: no public host uses it
    ("unspecified", "::", False),
    ("loopback", "::1", False),
    ("plain-public", "2606:4700:4700::1111", True),
]


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [(ip, allowed) for _, ip, allowed in EMBEDDED_IPV4_FORMS],
    ids=[name for name, _, _ in EMBEDDED_IPV4_FORMS],
)
def test_addresses_with_an_ipv4_inside_are_judged_by_it(settings, ip, allowed):
    settings.OUTBOUND_ALLOW_LOOPBACK = settings.OUTBOUND_ALLOW_PRIVATE = False
    assert address_allowed(ip) is allowed


@pytest.mark.parametrize(
    "ip",
    [ip for _, ip, allowed in EMBEDDED_IPV4_FORMS if not allowed and ip != "::1"],
    ids=[name for name, ip, allowed in EMBEDDED_IPV4_FORMS if not allowed and ip != "::1"],
)
def test_loopback_setting_does_not_open_embedded_forms(settings, ip):
    # OUTBOUND_ALLOW_LOOPBACK is for a receiver on this host: ::ffff:127.0.0.1 is that host,
    # a 6to4 or NAT64 wrapping of 127.0.0.1 is somebody else's relay.
    settings.OUTBOUND_ALLOW_LOOPBACK, settings.OUTBOUND_ALLOW_PRIVATE = True, False
    assert address_allowed(ip) is (ip == "::ffff:127.0.0.1")


def test_private_setting_allows_every_embedded_form(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    assert all(address_allowed(ip) for _, ip, _ in EMBEDDED_IPV4_FORMS)


@pytest.mark.parametrize(
    "url",
    [
        "http://[2002:7f00:1::]/hook",
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:8080/hook",
        "http://[::ffff:0:7f00:1]/hook",
        "http://[::a00:1]/hook",
    ],
)
def test_embedded_private_addresses_are_refused_at_send_time(settings, url):
    settings.OUTBOUND_ALLOW_LOOPBACK = settings.OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(OutboundError) as raised:
        post(url, body=b"", headers={}, timeout=1)
    assert raised.value.permanent and "refused" in str(raised.value)


class DripHandler(BaseHTTPRequestHandler):
    """Answers one byte every 0.2 s: each read succeeds, the answer never completes."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.wfile.flush()
        for _ in range(150):
            try:
                self.wfile.write(b"X")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)

    def log_message(self, *args):
        pass


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline(allow_loopback):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), DripHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(OutboundError) as raised:
            post(f"http://127.0.0.1:{httpd.server_address[1]}/", body=b"{}", headers={}, timeout=1)
        # The drip would last 30 s (150 bytes, 0.2 s apart): the 1 s deadline cuts it well
        # before, with room for a busy machine.
        assert time.monotonic() - started < 10
        assert "timed out" in str(raised.value)
        assert not raised.value.permanent
    finally:
        httpd.shutdown()
        httpd.server_close()


# --- connection reuse ---------------------------------------------------------------------


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; on /drop it answers as if keeping the connection, then
    closes it (a receiver whose keep-alive timeout ran out between two requests)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self.server.received.append((self.path, self.client_address))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        if self.path == "/drop":
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def keep_alive_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    httpd.received = []
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_pool_reuses_one_connection_for_requests_in_turn(keep_alive_server, allow_loopback):
    httpd, base = keep_alive_server
    with ConnectionPool() as pool:
        for n in range(5):
            assert pool.post(f"{base}/{n}", body=b"{}", headers={}, timeout=2).status == 200
    assert pool.opened == 1
    assert len({peer for _, peer in httpd.received}) == 1


def test_a_reused_connection_is_still_checked_against_the_address_guard(
    keep_alive_server, settings
):
    httpd, base = keep_alive_server
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    with ConnectionPool() as pool:
        pool.post(f"{base}/first", body=b"", headers={}, timeout=2)
        # An idle connection to the receiver is in the pool; the guard now refuses loopback.
        settings.OUTBOUND_ALLOW_LOOPBACK = False
        with pytest.raises(OutboundError) as raised:
            pool.post(f"{base}/second", body=b"", headers={}, timeout=2)
    assert raised.value.permanent
    assert "private or reserved address" in str(raised.value)
    assert [path for path, _ in httpd.received] == ["/first"]


def test_a_connection_the_receiver_closed_while_idle_is_replaced(keep_alive_server, allow_loopback):
    httpd, base = keep_alive_server
    with ConnectionPool() as pool:
        pool.post(f"{base}/drop", body=b"", headers={}, timeout=2)
        # The pooled connection is dead: the request goes once more on a new one.
        assert pool.post(f"{base}/after", body=b"", headers={}, timeout=2).status == 200
    assert [path for path, _ in httpd.received] == ["/drop", "/after"]
    assert pool.opened == 2
