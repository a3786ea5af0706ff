"""Schedule arithmetic for period + grace checks: pure functions of the last ping and the settings.

The clock-skew allowance is added to both deadlines: web nodes stamp pings with the database's
clock and the sweeper judges with the same clock, so the allowance only absorbs commit latency
and the small drift that remains, never a web node's own wrong clock.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_INTERVAL = timedelta(minutes=1)
MAX_INTERVAL = timedelta(days=365)


@dataclass(frozen=True)
class Deadlines:
    expected_at: datetime  # when the next ping is due
    late_at: datetime  # expected_at plus the skew allowance
    down_at: datetime  # late_at plus grace


def deadlines_after(
    last_ping_at: datetime, period: timedelta, grace: timedelta, skew_allowance: timedelta
) -> Deadlines:
    expected_at = last_ping_at + period
    late_at = expected_at + skew_allowance
    return Deadlines(expected_at=expected_at, late_at=late_at, down_at=late_at + grace)


def interval_error(value: timedelta | None, label: str) -> str | None:
    """A clear message when a period or grace is outside 1 minute .. 365 days, else None."""
    if value is None:
        return f"{label} is required."
    if value < MIN_INTERVAL:
        return f"{label} must be at least 1 minute."
    if value > MAX_INTERVAL:
        return f"{label} must be at most 365 days."
    return None
