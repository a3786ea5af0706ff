"""The run-duration chart of the check page, drawn on the server as SVG: one bar per finished
run, oldest on the left, its height proportional to the run's duration. No JavaScript and no
chart library; the runs table next to it carries the same numbers as text."""

from dataclasses import dataclass
from datetime import timedelta

WIDTH = 600
HEIGHT = 160
TOP = 16  # room for the maximum's label
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    outcome: str
    label: str  # the bar's tooltip and accessible text


@dataclass(frozen=True)
class DurationChart:
    width: int
    height: int
    bars: list[Bar]
    longest: timedelta


def duration_chart(runs, *, describe) -> DurationChart | None:
    """Bars for `runs` (objects with .duration, .outcome, .started_at, newest first, as the
    page lists them); `describe(run)` gives each bar's text. None when no run has a duration."""
    timed = [run for run in runs if run.duration is not None][::-1]
    if not timed:
        return None
    longest = max(run.duration for run in timed)
    scale = (HEIGHT - TOP) / max(longest.total_seconds(), 0.001)
    slot = WIDTH / len(timed)
    bars = []
    for i, run in enumerate(timed):
        # At least 2 px, so that a run of 0 seconds is still a visible bar.
        height = max(2.0, run.duration.total_seconds() * scale)
        bars.append(
            Bar(
                x=round(i * slot + GAP / 2, 2),
                y=round(HEIGHT - height, 2),
                width=round(max(1.0, slot - GAP), 2),
                height=round(height, 2),
                outcome=run.outcome,
                label=describe(run),
            )
        )
    return DurationChart(width=WIDTH, height=HEIGHT, bars=bars, longest=longest)
