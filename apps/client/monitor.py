"""Monitoring a Python job from inside: a context manager that is also a decorator.

    from apps.client import monitored

    with monitored("https://tocsin.example/ping/<uuid>"):
        back_up()

    @monitored("https://tocsin.example/ping/<uuid>")
    def back_up(): ...

Entering sends /start (in the background); leaving sends a success, or /fail with the
exception's traceback as the body. `sys.exit(n)` inside reports exit status n. The job's own
exception always propagates unchanged, and the monitor never raises because of Tocsin: ping
problems are printed to stderr (or passed to `warn`).
"""

import functools
import inspect
import sys
import time
import traceback

from .pinger import DEFAULT_BUDGET, check_ping_url
from .reporter import RunReporter
from .runner import TAIL_LIMIT


def _print_warning(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class monitored:
    def __init__(self, url: str, *, ping_timeout: float = DEFAULT_BUDGET, warn=_print_warning):
        self.url = url
        self.ping_timeout = ping_timeout
        self.warn = warn
        # One entry per active `with`, so that the same object can be entered again (nested
        # or recursive use); the decorator makes a fresh session per call instead.
        self._sessions: list[_Session] = []

    def _session(self) -> "_Session":
        return _Session(self.url, self.ping_timeout, self.warn)

    def __enter__(self) -> "monitored":
        session = self._session()
        session.begin()
        self._sessions.append(session)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._sessions.pop().end(exc)
        return False  # never swallow the job's exception

    def __call__(self, function):
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args, **kwargs):
                with self._session() as _:
                    return await function(*args, **kwargs)

            return async_wrapper

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self._session() as _:
                return function(*args, **kwargs)

        return wrapper


class _Session:
    """One monitored execution."""

    def __init__(self, url: str, ping_timeout: float, warn):
        self.url, self.ping_timeout, self.warn = url, ping_timeout, warn
        self.reporter: RunReporter | None = None
        self.started = 0.0

    def __enter__(self) -> "_Session":
        self.begin()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.end(exc)
        return False

    def begin(self) -> None:
        self.started = time.monotonic()
        try:
            self.reporter = RunReporter(
                check_ping_url(self.url), budget=self.ping_timeout, warn=self.warn
            )
            self.reporter.start()
        except Exception as error:  # a bad URL or our own bug must not stop the job
            self.reporter = None
            self.warn(f"tocsin: not monitoring this run: {error}")

    def end(self, exc: BaseException | None) -> None:
        if self.reporter is None:
            return
        try:
            suffix, body = _outcome(exc, time.monotonic() - self.started)
            self.reporter.finish(suffix, body)
        except Exception as error:
            self.warn(f"tocsin: could not report this run: {error}")


def _outcome(exc: BaseException | None, duration: float) -> tuple[str, bytes]:
    """The finishing ping for how the block ended: (suffix, body)."""
    took = f"[tocsin] finished after {duration:.3f} s\n"
    if exc is None:
        return "", took.encode()
    if isinstance(exc, SystemExit) and (exc.code is None or isinstance(exc.code, int)):
        code = exc.code or 0
        suffix = str(code) if 0 <= code <= 255 else "fail"
        return suffix, f"[tocsin] sys.exit({code}) after {duration:.3f} s\n".encode()
    text = "".join(traceback.format_exception(exc)) + took
    return "fail", text.encode("utf-8", "replace")[-TAIL_LIMIT:]
