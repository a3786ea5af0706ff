"""Monitoring the monitor: when was Tocsin itself blind? Pure functions of the sweep history.

Two ways Tocsin can miss pings that were sent: the sweeper stops (nothing is judged for a
while), or pings stop arriving at all (an ingest outage: a load balancer or the web nodes are
down, so jobs ping into the void). Deadlines that pass while Tocsin is blind are recorded as
`unknown` instead of paging every team at once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SweepSample:
    started_at: datetime
    pings_folded: int
    # How long that sweep took: a slow sweep is not a stopped one, so the gap that reveals a
    # stopped sweeper is counted from the previous sweep's end.
    duration: timedelta = timedelta(0)


@dataclass(frozen=True)
class BlindWindow:
    since: datetime
    cause: str  # "sweeper" or "ingest"


def detect_blind_window(
    history: list[SweepSample],
    *,
    now: datetime,
    sweep_interval: timedelta,
    allowance: timedelta,
    ingest_window: timedelta = timedelta(minutes=2),
    baseline_window: timedelta = timedelta(minutes=30),
    min_baseline_per_minute: float = 10.0,
    drop_ratio: float = 0.1,
) -> BlindWindow | None:
    """`history` is the recent sweeps, newest first, not including the one running at `now`.

    - Sweeper gap: the previous sweep ended more than three intervals plus the allowance ago
      (blind since it started: deadlines after its `now` were not judged by it).
    - Ingest drop: over the last `ingest_window` fewer than `drop_ratio` of the pings per
      minute seen over the `baseline_window` before it arrived, and that baseline was busy
      enough (`min_baseline_per_minute`) for a drop to mean something.
    """
    if not history:
        return None
    previous = history[0]
    if now - (previous.started_at + previous.duration) > 3 * sweep_interval + allowance:
        return BlindWindow(since=previous.started_at, cause="sweeper")

    recent_start = now - ingest_window
    baseline_start = recent_start - baseline_window
    if history[-1].started_at > baseline_start + ingest_window:
        return None  # not enough history to have a baseline
    recent_sweeps = [s for s in history if s.started_at >= recent_start]
    if not recent_sweeps:
        # A slow (but not stopped) sweeper: the pings are waiting to be folded, not lost.
        return None
    recent = sum(s.pings_folded for s in recent_sweeps)
    baseline = sum(s.pings_folded for s in history if baseline_start <= s.started_at < recent_start)
    baseline_rate = baseline / (baseline_window.total_seconds() / 60)
    recent_rate = recent / (ingest_window.total_seconds() / 60)
    if baseline_rate >= min_baseline_per_minute and recent_rate < drop_ratio * baseline_rate:
        return BlindWindow(since=recent_start, cause="ingest")
    return None
