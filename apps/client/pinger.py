"""Sending one ping to Tocsin, with retries inside a bounded time.

A monitor must never fail or hang the job it watches, so `send_ping` never raises for network
trouble: it retries connection errors, timeouts, 5xx and 429 answers with exponential backoff
until its time budget is spent, and then gives up and says so in the returned `PingOutcome`.
A 4xx answer (unknown check, malformed ping) is permanent and is not retried.

Standard library only: this module runs on job hosts where Django is not installed.
"""

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

USER_AGENT = "tocsin-cli/0.1"
# Total time one ping may take, retries included, and the cap on a single attempt.
DEFAULT_BUDGET = 10.0
ATTEMPT_TIMEOUT = 5.0
FIRST_BACKOFF = 0.25
MAX_BACKOFF = 4.0
# Statuses worth another try: the server is there but busy, or its database is (503).
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SUFFIXES = ("start", "fail", "log", "progress")


class BadPingUrl(ValueError):
    """The ping URL cannot be used: not http(s), or no host."""


def check_ping_url(url: str) -> str:
    """The URL, if it can carry pings; raises BadPingUrl with a one-line reason otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadPingUrl(f"ping URL must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise BadPingUrl(f"ping URL has no host: {url!r}")
    return url


def ping_url(base: str, suffix: str = "", *, run_id: str | None = None) -> str:
    """`base` with `/suffix` appended to its path and `rid` added to its query string.

    `suffix` is "", one of SUFFIXES, or an exit status 0..255. Any query the user's URL
    already has (e.g. `?create=1`) is kept."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if suffix:
        path = f"{path}/{suffix}"
    query = parts.query
    if run_id:
        query = "&".join(q for q in (query, urlencode({"rid": run_id})) if q)
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


@dataclass(frozen=True)
class PingOutcome:
    delivered: bool
    attempts: int
    # The server's answer (status and first line), or why the last attempt failed.
    detail: str


def _attempt(url: str, body: bytes, timeout: float) -> tuple[int, str]:
    """One POST; returns (HTTP status, first line of the answer). Raises OSError subclasses
    (URLError, timeouts, resets) when no answer came."""
    request = urllib.request.Request(  # noqa: S310 (the scheme was checked: http or https)
        url,
        data=body,
        method="POST",
        headers={
            "User-Agent": USER_AGENT,
            "Content-Type": "application/octet-stream",
            # The job's own clock, so that Tocsin can show a clock offset on the check page.
            "X-Tocsin-Sent-At": f"{time.time():.3f}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(200).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(200).decode("utf-8", "replace")


def _attempt_within(url: str, body: bytes, seconds: float) -> tuple[int, str]:
    """`_attempt` cut off after `seconds` in all cases. The socket timeout alone does not
    bound an attempt: it applies to each network operation, so a server that drips a byte at
    a time keeps it going, and name resolution ignores it. The attempt runs on a daemon
    thread that is abandoned when it overruns (and dies with the process)."""
    outcome: list = []

    def target():
        try:
            outcome.append(_attempt(url, body, seconds))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=target, name="tocsin-ping", daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise TimeoutError(f"no complete answer within {seconds:.1f} s")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def send_ping(
    url: str,
    body: bytes = b"",
    *,
    budget: float = DEFAULT_BUDGET,
    attempt_timeout: float = ATTEMPT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PingOutcome:
    """POST `body` to `url`, retrying transient failures until `budget` seconds have passed.

    Never raises for network or server trouble, and returns within about `budget` seconds,
    however the network or the server misbehaves."""
    deadline = clock() + max(budget, 0.1)
    backoff, attempts, detail = FIRST_BACKOFF, 0, ""
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return PingOutcome(False, attempts, detail or "no time left")
        attempts += 1
        try:
            status, text = _attempt_within(url, body, min(attempt_timeout, remaining))
        except (OSError, ValueError, http.client.HTTPException) as error:
            # ValueError: http.client rejects some malformed URLs only when sending.
            # HTTPException: something answered, but not HTTP (a bad status line, a cut body).
            detail = _describe(error)
        else:
            detail = f"{status} {text.strip().splitlines()[0] if text.strip() else ''}".strip()
            if status < 400:
                return PingOutcome(True, attempts, detail)
            if status not in RETRYABLE_STATUSES:
                return PingOutcome(False, attempts, detail)
        remaining = deadline - clock()
        if remaining <= backoff:
            return PingOutcome(False, attempts, detail)
        sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)


def _describe(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    if reason is not None:
        return f"{type(reason).__name__}: {reason}"
    return f"{type(error).__name__}: {error}"
