"""Uptime of a check over a window, computed from its flips (status changes).

Only time the check was watched counts: time spent new, paused or unknown (Tocsin itself was
blind) is left out of both sides. Late counts as up: the job is past its expected time but
still within its grace, so nothing has failed yet. Down is the only outage.

    uptime = time up or late / (time up, late or down)

Pure: no ORM, no clock; the caller passes `now` and the flips.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

UP_STATUSES = frozenset({"up", "late"})
DOWN_STATUSES = frozenset({"down"})


def uptime_ratio(
    flips: Iterable[tuple[datetime, str]],
    *,
    status_before: str,
    since: datetime,
    now: datetime,
) -> float | None:
    """The share of watched time in [since, now) that the check was not down, from 0 to 1.

    `flips` are (happened_at, new status) in any order; `status_before` is the status the check
    had at `since` (the new status of the last flip before it, or "new"). Returns None when the
    check was never watched in the window (so the page can say "no data", not 100 %)."""
    if now <= since:
        return None
    up = down = timedelta(0)
    status, start = status_before, since
    for at, to_status in sorted(f for f in flips if since <= f[0] < now):
        up, down = _add(status, at - start, up, down)
        status, start = to_status, at
    up, down = _add(status, now - start, up, down)
    watched = up + down
    if not watched:
        return None
    return up / watched


def _add(status: str, span: timedelta, up: timedelta, down: timedelta):
    if status in UP_STATUSES:
        return up + span, down
    if status in DOWN_STATUSES:
        return up, down + span
    return up, down
