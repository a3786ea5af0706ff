"""One monitored run as Tocsin sees it: a start, progress heartbeats, and one finish, all
carrying the same fresh run id (`rid`) so that Tocsin pairs them even when runs overlap.

The start ping goes out on a background thread, so the job starts at once even when Tocsin is
slow or unreachable; the finish waits for it (within its own budget) so that the start always
arrives first. Problems are reported through `warn` and never raised.
"""

import threading
import uuid
from collections.abc import Callable

from .pinger import DEFAULT_BUDGET, PingOutcome, ping_url, send_ping


class RunReporter:
    def __init__(
        self,
        url: str,
        *,
        budget: float = DEFAULT_BUDGET,
        warn: Callable[[str], None] = lambda message: None,
    ):
        self.url = url
        self.budget = budget
        self.warn = warn
        self.run_id = str(uuid.uuid4())
        self._start_thread: threading.Thread | None = None

    def _send(self, suffix: str, body: bytes = b"") -> PingOutcome:
        try:
            outcome = send_ping(
                ping_url(self.url, suffix, run_id=self.run_id), body, budget=self.budget
            )
        except Exception as error:  # the monitor must never break the job, even on our bugs
            outcome = PingOutcome(False, 0, f"{type(error).__name__}: {error}")
        if not outcome.delivered:
            what = f"/{suffix}" if suffix else "success"
            self.warn(
                f"tocsin: could not send the {what} ping after {outcome.attempts} "
                f"attempt(s): {outcome.detail}"
            )
        return outcome

    def start(self) -> None:
        """Send /start in the background; returns at once."""
        self._start_thread = threading.Thread(
            target=self._send, args=("start",), name="tocsin-start", daemon=True
        )
        self._start_thread.start()

    def progress(self) -> PingOutcome:
        return self._send("progress")

    def finish(self, suffix: str, body: bytes = b"") -> PingOutcome:
        """Send the run's outcome: "" (success), "fail" or an exit status, with `body`."""
        if self._start_thread is not None:
            # Bounded: the start ping gives up within its own budget.
            self._start_thread.join(self.budget + 1)
        return self._send(suffix, body)
