"""A real HTTP server in a thread that receives webhooks, for delivery tests.

    with receiving() as receiver:
        receiver.script = [500, 500, 200]      # answers in order, then the last one forever
        ...post to receiver.url("/hook")...
        (request,) = receiver.requests

An answer is an HTTP status, or an Answer with headers and a body of its own (a provider's
429 with Retry-After, its JSON error). An answer of HANG accepts the request and never answers
(until the server stops). An answer of HOLD answers 200 once `receiver.hold_until()` is true
(or after 30 s), and records which of the two released it. `receiver.delay` makes every
answer that many seconds late; `receiving(keep_alive=True)` speaks HTTP/1.1 and keeps
connections open between requests.
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = "hang"
HOLD = "hold"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple = ()  # the client's (address, port): one per connection

    def json(self):
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Receiver:
    def __init__(self, server: ThreadingHTTPServer):
        self.server = server
        self.script: list = [200]
        self.requests: list[Received] = []
        self.stopping = threading.Event()
        self.delay = 0.0
        self.answers_by_path: dict[str, int] = {}  # answers for these paths, whatever the script
        self.hold_until: Callable[[], bool] = lambda: False
        self.held_released_by: list[str] = []  # "condition" or "timeout", per HOLD answered
        self.busy = 0  # requests being answered now
        self.peak_busy = 0  # the most answered at once
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

    def enter(self) -> None:
        with self._lock:
            self.busy += 1
            self.peak_busy = max(self.peak_busy, self.busy)

    def leave(self) -> None:
        with self._lock:
            self.busy -= 1

    def hold(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.stopping.is_set():
            if self.hold_until():
                self.held_released_by.append("condition")
                return
            time.sleep(0.01)
        self.held_released_by.append("timeout")


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        receiver: Receiver = self.server.receiver
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        receiver.enter()
        try:
            receiver.requests.append(
                Received(self.path, dict(self.headers.items()), body, self.client_address)
            )
            answer = receiver.answers_by_path.get(self.path) or receiver.next_answer()
            if answer == HANG:
                receiver.stopping.wait(30)
                self.close_connection = True
                return
            if answer == HOLD:
                receiver.hold()
                answer = 200
            if receiver.delay:
                time.sleep(receiver.delay)
            if not isinstance(answer, Answer):
                answer = Answer(answer)
            content = answer.body or (b"ok" if answer.status < 300 else b"receiver error")
            self.send_response(answer.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(content)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)
        finally:
            receiver.leave()

    def log_message(self, *args):
        pass


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"


class _QuietServer(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when many senders connect at once.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that gave up (a sender's timeout cut the connection) is what the tests do on
        # purpose; the request is already recorded.
        pass


@contextmanager
def receiving(*, keep_alive: bool = False) -> Iterator[Receiver]:
    server = _QuietServer(("127.0.0.1", 0), _KeepAliveHandler if keep_alive else _Handler)
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
