"""Telling the outside world that the sweeper is alive (SWEEPER_DEADMAN_URL)."""

import logging
import urllib.error
import urllib.request

logger = logging.getLogger(__name__)


def ping_deadman(url: str, *, timeout: float, summary: str = "") -> bool:
    """POST the sweep summary to `url`. Returns whether it answered 2xx; never raises, since a
    monitor of the monitor that is down must not take the sweeper with it."""
    request = urllib.request.Request(  # noqa: S310 - an operator-configured http(s) URL
        url,
        data=summary.encode()[:10_000],
        method="POST",
        headers={"User-Agent": "tocsin-sweeper", "Content-Type": "text/plain"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("sweeper dead-man ping to %s failed: %s", url, exc)
        return False
