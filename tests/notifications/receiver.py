"""A real HTTP server in a thread that receives webhooks, for delivery tests.

    with receiving() as receiver:
        receiver.script = [500, 500, 200]      # answers in order, then the last one forever
        ...post to receiver.url("/hook")...
        (request,) = receiver.requests

An answer of HANG accepts the request and never answers (until the server stops).
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = "hang"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    def __init__(self, server: ThreadingHTTPServer):
        self.server = server
        self.script: list = [200]
        self.requests: list[Received] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "/hook") -> str:
        return f"{self.base_url}{path}"

    def next_answer(self):
        with self._lock:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        receiver: Receiver = self.server.receiver
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
        answer = receiver.next_answer()
        if answer == HANG:
            receiver.stopping.wait(30)
            return
        self.send_response(answer)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if answer < 300 else b"receiver error")

    def log_message(self, *args):
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that gave up (a sender's timeout cut the connection) is what the tests do on
        # purpose; the request is already recorded.
        pass


@contextmanager
def receiving() -> Iterator[Receiver]:
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    server.receiver = receiver
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
