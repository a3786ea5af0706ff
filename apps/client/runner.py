"""Running the wrapped command: output passed through byte for byte (and its tail kept),
signals forwarded, an optional timeout, and periodic heartbeats while it runs.

The command runs in its own process group. A signal the wrapper receives (SIGTERM from
systemd or `kill`, SIGINT, SIGHUP, SIGQUIT) is forwarded once to that group, so that a shell
script and the programs it started all receive it, exactly once. The timeout also stops the
whole group: SIGTERM first, then SIGKILL if it is still running after KILL_AFTER seconds. In
an interactive terminal the command's group is made the foreground one while it runs, so that
it can read the terminal and a Ctrl-C reaches it directly.

Exit statuses follow the shell's conventions: a command killed by signal N ends with 128+N,
a command that cannot be found with 127, one that cannot be executed with 126, and a timeout
with 124 (as GNU timeout does).
"""

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TAIL_LIMIT = 10 * 1024
# A partial line longer than this is placed in the tail without waiting for its newline.
LINE_LIMIT = 4 * 1024
KILL_AFTER = 5.0
# After the command exits, how long to wait for the rest of its output: a background process
# it started may keep the pipes open for much longer, and the wrapper must not wait for it.
DRAIN_TIMEOUT = 2.0
EXIT_TIMEOUT = 124
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


class OutputTail:
    """The last `limit` bytes of what the command wrote on its streams (stdout and stderr),
    merged line by line for whoever reads the alert.

    Each stream's bytes go in as they arrive, but only whole lines are placed in the tail: a
    line that comes in pieces (an unbuffered stderr writing "disk full" and then its newline,
    while stdout writes meanwhile) is held until its newline arrives, and only then placed as
    one line, after whatever the other stream placed meanwhile. Otherwise lines keep their
    arrival order across the streams. A partial line is placed without its newline when its
    stream ends (`close`) or once it reaches `line_limit` bytes (a stream that never writes a
    newline, such as binary data, is still kept); if the other stream then places a line, a
    newline is put in between, so that the two never share a line. Within one stream the
    bytes stay exactly as written. Thread-safe: each stream is fed by its own thread.
    """

    def __init__(self, limit: int = TAIL_LIMIT, line_limit: int = LINE_LIMIT):
        self.limit = limit
        self.line_limit = line_limit
        self.total = 0
        self._buffer = bytearray()
        # The stream whose bytes end the tail without a newline (a placed partial line).
        self._unterminated: str | None = None
        # Per stream: the partial line held back, until its newline or the stream's end.
        self._held: dict[str, bytearray] = {}
        self._lock = threading.Lock()

    def append(self, stream: str, data: bytes) -> None:
        """Take `data` as it was read from `stream` ("stdout", "stderr")."""
        with self._lock:
            self.total += len(data)
            held = self._held.setdefault(stream, bytearray())
            held += data
            end = held.rfind(b"\n") + 1
            if end:
                self._place(stream, held[:end])
                del held[:end]
            if len(held) >= self.line_limit:
                self._place(stream, held)
                held.clear()

    def close(self, stream: str) -> None:
        """The stream ended: place its partial line, if any."""
        with self._lock:
            held = self._held.pop(stream, None)
            if held:
                self._place(stream, held)

    def value(self) -> bytes:
        """The tail, with the partial lines of streams that are still open placed last (a
        background process may hold a pipe open after the command exited)."""
        with self._lock:
            buffer, unterminated = bytearray(self._buffer), self._unterminated
            for stream, held in self._held.items():
                if held:
                    if unterminated not in (None, stream):
                        buffer += b"\n"
                    buffer += held
                    unterminated = stream
            return bytes(buffer[-self.limit :])

    def _place(self, stream: str, data: bytes | bytearray) -> None:
        if self._unterminated not in (None, stream):
            self._buffer += b"\n"
        self._buffer += data
        self._unterminated = None if data.endswith(b"\n") else stream
        if len(self._buffer) > self.limit:
            del self._buffer[: len(self._buffer) - self.limit]


@dataclass(frozen=True)
class Completed:
    exit_status: int
    duration: float
    # What happened, in words, for the ping body: "exited with status 3",
    # "killed by SIGTERM (forwarded from the wrapper)", "timed out after 5 s".
    summary: str
    output_tail: bytes
    timed_out: bool = False
    signal_received: int | None = None


def _write_all(fd: int, data: bytes) -> bool:
    """Write everything to `fd`; False once the reader is gone (closed pipe, full disk)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return False
        view = view[written:]
    return True


def _pump(name: str, source, target_fd: int, tail: OutputTail) -> None:
    """Copy the command's pipe to our own stream as soon as each read returns, keeping its
    tail. Keeps draining the pipe even when our stream is gone, so that the command never
    blocks on a full pipe."""
    can_write = True
    fd = source.fileno()
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not data:
            break
        # Into the tail (a copy under a lock) before the terminal, so that whatever the
        # terminal has shown is in the tail already. The terminal gets the bytes unchanged,
        # partial lines included; only the tail holds a partial line back.
        tail.append(name, data)
        if can_write:
            can_write = _write_all(target_fd, data)
    tail.close(name)
    source.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Heartbeat:
    """Calls `beat` every `every` seconds on a daemon thread until stopped."""

    def __init__(self, every: float, beat: Callable[[], object]):
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(every, beat), name="tocsin-progress", daemon=True
        )
        self._thread.start()

    def _run(self, every: float, beat: Callable[[], object]) -> None:
        while not self._stop.wait(every):
            beat()

    def stop(self) -> None:
        self._stop.set()


def _not_started(status: int, message: str, stderr_fd: int) -> Completed:
    text = f"tocsin: {message}\n".encode()
    _write_all(stderr_fd, text)
    return Completed(status, 0.0, message, text)


def run_command(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    progress_every: float | None = None,
    on_progress: Callable[[], object] | None = None,
    tail_limit: int = TAIL_LIMIT,
    kill_after: float = KILL_AFTER,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
) -> Completed:
    """Run `argv` to completion and describe how it ended. Never raises for the command's
    sake: a command that cannot start ends with 127 or 126, like in a shell.

    Signal forwarding needs the main thread (Python delivers signals there); elsewhere the
    command still runs, without forwarding."""
    tail = OutputTail(tail_limit)
    received: list[int] = []
    # Signals that arrived before the command existed, delivered as soon as it does.
    pending: list[int] = []
    proc: subprocess.Popen | None = None

    def forward(signum, frame):
        received.append(signum)
        if proc is None:
            pending.append(signum)
        else:
            _kill_group(proc, signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        # Installed before the command starts: a signal arriving in between is remembered
        # and delivered right after the start.
        for signum in FORWARDED_SIGNALS:
            previous[signum] = signal.signal(signum, forward)
    started = time.monotonic()
    try:
        try:
            proc = subprocess.Popen(  # noqa: S603 (running the user's command is the point)
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0
            )
        except FileNotFoundError:
            return _not_started(EXIT_NOT_FOUND, f"command not found: {argv[0]}", stderr_fd)
        except OSError as error:
            message = f"cannot execute {argv[0]}: {error.strerror or error}"
            return _not_started(EXIT_CANNOT_EXECUTE, message, stderr_fd)
        for signum in pending:
            _kill_group(proc, signum)
        terminal = _foreground_terminal() if previous else None
        if terminal is not None:
            _hand_terminal_to(terminal, proc.pid)
            # It may have tried to read the terminal before it was its own, and been stopped.
            _kill_group(proc, signal.SIGCONT)
        pumps = [
            threading.Thread(
                target=_pump, args=("stdout", proc.stdout, stdout_fd, tail), daemon=True
            ),
            threading.Thread(
                target=_pump, args=("stderr", proc.stderr, stderr_fd, tail), daemon=True
            ),
        ]
        for pump in pumps:
            pump.start()
        heartbeat = None
        if progress_every and on_progress:
            heartbeat = _Heartbeat(progress_every, on_progress)
        timed_out = _wait(proc, timeout, kill_after)
        duration = time.monotonic() - started
        if terminal is not None:
            _hand_terminal_to(terminal, os.getpgrp())
        if heartbeat:
            heartbeat.stop()
        drain_deadline = time.monotonic() + DRAIN_TIMEOUT
        for pump in pumps:
            pump.join(max(0.0, drain_deadline - time.monotonic()))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return _describe(proc.returncode, duration, tail, timed_out, timeout, received)


def _foreground_terminal() -> int | None:
    """stdin's file descriptor when it is a terminal whose foreground is our process group,
    i.e. an interactive run; None under cron, systemd or a pipe."""
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def _hand_terminal_to(fd: int, pgid: int) -> None:
    """Make `pgid` the terminal's foreground group: the command in its own group can then
    read the terminal (a background group would be stopped by SIGTTIN), and a Ctrl-C there
    reaches the command directly, once. SIGTTOU is ignored meanwhile: taking the terminal
    back from the background would otherwise stop the wrapper itself."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, pgid)
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, previous)


def _wait(proc: subprocess.Popen, timeout: float | None, kill_after: float) -> bool:
    """Wait for the command; on timeout stop its process group. True if it timed out."""
    if timeout is None:
        proc.wait()
        return False
    try:
        proc.wait(timeout)
        return False
    except subprocess.TimeoutExpired:
        pass
    _kill_group(proc, signal.SIGTERM)
    try:
        proc.wait(kill_after)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
    return True


def _kill_group(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def _describe(returncode, duration, tail, timed_out, timeout, received) -> Completed:
    signal_received = received[0] if received else None
    if timed_out:
        status = EXIT_TIMEOUT
        summary = f"timed out after {timeout:g} s and was stopped"
    elif returncode < 0:
        status = 128 - returncode
        summary = f"killed by {_signal_name(-returncode)}"
    else:
        status = returncode
        summary = f"exited with status {returncode}"
    if signal_received is not None and not timed_out:
        summary += f" after the wrapper received {_signal_name(signal_received)}"
    return Completed(
        exit_status=status,
        duration=duration,
        summary=summary,
        output_tail=tail.value(),
        timed_out=timed_out,
        signal_received=signal_received,
    )
