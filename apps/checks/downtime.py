"""How long a check was down in a window, from its flips (status changes). Pure: no ORM, no
clock; the caller passes the flips, the status before the window and `now`.

Only "down" is downtime. Paused, new and unknown time (Tocsin itself was blind) is not: a
paused check was taken out of watch on purpose. Late is not either: the job is past its time
but within its grace, so nothing has failed yet. A down spell that began before the window
counts from the window's start; one still going at `now` counts up to `now`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

DOWN = "down"


@dataclass(frozen=True)
class Downtime:
    total: timedelta
    # Down spells that overlap the window (one that began before it counts too).
    spells: int

    @property
    def total_seconds(self) -> int:
        return int(self.total.total_seconds())


NONE = Downtime(total=timedelta(0), spells=0)


def downtime_in(
    flips: Iterable[tuple[datetime, str]],
    *,
    status_before: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Downtime:
    """Downtime in [start, min(end, now)). `flips` are (happened_at, new status) in any order;
    `status_before` is the check's status at `start` (the new status of the last flip before
    it, or "new"). Flips outside the window are ignored."""
    stop = min(end, now)
    if stop <= start:
        return NONE
    total, spells = timedelta(0), 0
    status, since = status_before, start
    if status == DOWN:
        spells = 1
    for at, to_status in sorted(f for f in flips if start <= f[0] < stop):
        if status == DOWN:
            total += at - since
        if to_status == DOWN and status != DOWN:
            spells += 1
        status, since = to_status, at
    if status == DOWN:
        total += stop - since
    return Downtime(total=total, spells=spells)


def exact_duration(value: timedelta) -> str:
    """To the second, largest unit first: "2 d 3 h 0 min 5 s", "45 min 0 s", "0 s"."""
    seconds = max(0, int(value.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{amount} {unit}" for amount, unit in parts)
