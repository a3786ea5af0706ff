"""The wrapper's parts without Tocsin: running a command (in this process, real subprocesses),
URL building, and the retry loop against a real local HTTP server that
answers what a struggling Tocsin would."""

import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.client.pinger import BadPingUrl, check_ping_url, ping_url, send_ping
from apps.client.runner import run_command

from .conftest import python_command


@pytest.mark.parametrize(
    ("base", "suffix", "run_id", "expected"),
    [
        ("https://t.example/ping/abc", "", None, "https://t.example/ping/abc"),
        ("https://t.example/ping/abc/", "start", None, "https://t.example/ping/abc/start"),
        ("https://t.example/ping/k/slug", "3", "r1", "https://t.example/ping/k/slug/3?rid=r1"),
        (
            "https://t.example/ping/k/slug?create=1",
            "fail",
            "r1",
            "https://t.example/ping/k/slug/fail?create=1&rid=r1",
        ),
        ("http://t.example:8000/ping/abc#frag", "log", None, "http://t.example:8000/ping/abc/log"),
    ],
    ids=["plain", "trailing-slash", "exit-status-rid", "keeps-query", "drops-fragment"],
)
def test_ping_url_appends_the_suffix_and_run_id(base, suffix, run_id, expected):
    assert ping_url(base, suffix, run_id=run_id) == expected


@pytest.mark.parametrize("url", ["", "tocsin.example/ping/x", "file:///etc/passwd", "http:///x"])
def test_unusable_ping_urls_are_refused(url):
    with pytest.raises(BadPingUrl):
        check_ping_url(url)


def _run(tmp_path, argv, **kwargs):
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        completed = run_command(
            argv, stdout_fd=stdout.fileno(), stderr_fd=stderr.fileno(), **kwargs
        )
    return completed, out.read_bytes(), err.read_bytes()


def test_large_output_on_both_streams_passes_through_without_blocking(tmp_path):
    script = (
        "import sys\n"
        "for i in range(2000):\n"
        "    sys.stdout.buffer.write(b'o' * 500 + b'\\n')\n"
        "    sys.stderr.buffer.write(b'e' * 500 + b'\\n')\n"
    )

    completed, out, err = _run(tmp_path, python_command(script), tail_limit=1000)

    assert completed.exit_status == 0
    assert out == (b"o" * 500 + b"\n") * 2000
    assert err == (b"e" * 500 + b"\n") * 2000
    assert len(completed.output_tail) == 1000


def test_command_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    # The command ignores SIGTERM from its first instruction: it inherits SIG_IGN (an ignored
    # signal stays ignored across exec), so no start-up race decides whether the timeout's
    # SIGTERM comes before the command could set that up. The wrapper runs on another thread,
    # where it installs no handlers of its own.
    results = []
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        runner = threading.Thread(
            target=lambda: results.append(
                _run(tmp_path, ["sleep", "600"], timeout=0.5, kill_after=0.5)
            )
        )
        runner.start()
        # Only a guard: the wrapper returns after the timeout and the grace (1 s); without the
        # SIGKILL it would wait for the 600 s sleep.
        runner.join(60)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert not runner.is_alive(), "the command ignoring SIGTERM was never killed"
    ((completed, _, _),) = results
    assert completed.exit_status == 124
    assert completed.timed_out
    assert completed.summary == "timed out after 0.5 s and was stopped"


def test_background_process_keeping_the_pipes_open_does_not_hold_the_wrapper(tmp_path):
    # The shell exits at once; its background sleep inherits stdout and holds the pipe for ten
    # minutes. The wrapper waits the drain timeout (2 s) for the rest of the output, not that.
    results = []
    runner = threading.Thread(
        target=lambda: results.append(_run(tmp_path, ["sh", "-c", "sleep 600 & echo $!"]))
    )
    runner.start()
    runner.join(60)  # only a guard against a hang, far from both 2 s and 600 s

    assert not runner.is_alive(), "the wrapper waited for the background process"
    ((completed, out, _),) = results
    os.kill(int(out), signal.SIGKILL)  # the background sleep: its pid is all the output
    assert completed.exit_status == 0
    assert out.strip().isdigit()


def test_not_executable_file_ends_with_126(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)

    completed, _, err = _run(tmp_path, [str(script)])

    assert completed.exit_status == 126
    assert b"cannot execute" in err


class _Flaky(BaseHTTPRequestHandler):
    """Answers the queued statuses in turn, then 200."""

    answers: list[int] = []
    seen: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(body)
        status = type(self).answers.pop(0) if type(self).answers else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"unavailable: try again" if status >= 500 else b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server():
    _Flaky.answers, _Flaky.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping/x", _Flaky
    server.shutdown()
    server.server_close()
    thread.join()


def test_transient_errors_are_retried_until_delivered(flaky_server):
    url, handler = flaky_server
    handler.answers = [503, 502, 429]

    outcome = send_ping(url, b"payload", budget=10)

    assert outcome.delivered
    assert outcome.attempts == 4
    assert handler.seen == [b"payload"] * 4


def test_permanent_errors_are_not_retried(flaky_server):
    url, handler = flaky_server
    handler.answers = [400]

    outcome = send_ping(url, budget=10)

    assert not outcome.delivered
    assert outcome.attempts == 1


class _WalkedClock:
    """The clock send_ping budgets with, walked only by its own sleeps: the retry schedule is
    then exactly the same on a busy machine as on an idle one."""

    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_retries_stop_when_the_budget_is_spent(flaky_server):
    url, handler = flaky_server
    handler.answers = [503] * 100
    walked = _WalkedClock()

    outcome = send_ping(url, budget=1.0, clock=walked.clock, sleep=walked.sleep)

    assert not outcome.delivered
    assert outcome.detail == "503 unavailable: try again"
    # Backoffs of 0.25 s and 0.5 s fit in the second; the next one (1 s) would not.
    assert walked.slept == [0.25, 0.5]
    assert outcome.attempts == 3
    assert len(handler.seen) == 3


@pytest.fixture
def misbehaving_server():
    """A local TCP server whose behaviour the test picks: "drip" sends a valid status line and
    then one header byte every 0.2 s forever; "garbage" answers something that is not HTTP."""
    mode = {"value": "drip"}
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)

    def serve(conn):
        with conn:
            conn.recv(65536)
            if mode["value"] == "garbage":
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"X")
                except OSError:
                    return

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/ping/x", mode
    stop.set()
    thread.join()
    listener.close()


def test_a_server_that_drips_bytes_cannot_hold_a_ping_past_its_budget(misbehaving_server):
    url, _ = misbehaving_server
    started = time.monotonic()

    outcome = send_ping(url, budget=1.0)

    assert not outcome.delivered
    assert "no complete answer" in outcome.detail
    # The server would drip forever: any return shows the cut-off; the bound leaves room for
    # a busy machine.
    assert time.monotonic() - started < 1.0 + 4


def test_an_answer_that_is_not_http_is_retried_then_given_up(misbehaving_server):
    url, mode = misbehaving_server
    mode["value"] = "garbage"

    outcome = send_ping(url, budget=1.0)

    assert not outcome.delivered
    assert outcome.attempts >= 2
    assert "BadStatusLine" in outcome.detail
