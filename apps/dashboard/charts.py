"""The run-duration chart of the check page, drawn on the server as SVG: one bar per finished
run, oldest on the left, its height proportional to the run's duration against a y axis with
round tick values ("0 s", "250 ms", "500 ms"). No JavaScript and no chart library; the runs
table next to it carries the same numbers as text.

Bars are at most MAX_BAR wide, so one run is one bar beside an empty axis (not a block across
the whole chart), and twenty runs share the width. The axis labels are HTML laid over the
plot (check_detail.html), so they stay legible at any width while the SVG stretches."""

import math
from dataclasses import dataclass
from datetime import timedelta

WIDTH = 600
HEIGHT = 160
GAP = 4
MAX_BAR = 40
# Round axis maxima: the smallest of these times a power of ten that holds the longest run.
NICE_STEPS = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    outcome: str
    label: str  # the bar's tooltip and accessible text


@dataclass(frozen=True)
class Tick:
    percent: float  # from the bottom of the plot
    label: str


@dataclass(frozen=True)
class DurationChart:
    width: int
    height: int
    bars: list[Bar]
    longest: timedelta
    ticks: list[Tick]
    first_label: str  # the oldest run's time, under the left end of the x axis
    last_label: str  # the newest run's time, under the right end


def nice_ceiling(seconds: float) -> float:
    """The round axis maximum for a longest run of `seconds` (at least 1 ms), round in the
    unit its label uses: 250 ms, 8 s, 4 min (not 250 s), 1.5 h."""
    seconds = max(seconds, 0.001)
    unit = 1 if seconds <= 60 else 60 if seconds <= 3600 else 3600
    value = seconds / unit
    power = 10 ** math.floor(math.log10(value))
    for step in NICE_STEPS:
        if step * power >= value * (1 - 1e-9):
            return round(step * power * unit, 6)
    return round(10 * power * unit, 6)


def compact_duration(seconds: float) -> str:
    """An axis label: "0 s", "250 ms", "1.5 s", "45 s", "2.5 min", "1.5 h"."""
    if seconds <= 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def precise_duration(value: timedelta | None) -> str:
    """A run's duration with sub-second precision: "0.042 s", "12.35 s", "2 min 5.3 s",
    "1 h 2 min 5 s". Runs are often short, so whole seconds would hide what changed."""
    if value is None:
        return ""
    total = max(value.total_seconds(), 0.0)
    if total < 60:
        return (f"{total:.3f}".rstrip("0").rstrip(".") or "0") + " s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{int(hours)} h {int(minutes)} min {int(seconds)} s"
    return f"{int(minutes)} min {seconds:.1f}".rstrip("0").rstrip(".") + " s"


def duration_chart(runs, *, describe, moment) -> DurationChart | None:
    """Bars for `runs` (objects with .duration and .outcome, newest first, as the page lists
    them); `describe(run)` gives each bar's text and `moment(run)` the x axis's end labels.
    None when no run has a duration."""
    timed = [run for run in runs if run.duration is not None][::-1]
    if not timed:
        return None
    longest = max(run.duration for run in timed)
    top = nice_ceiling(longest.total_seconds())
    scale = HEIGHT / top
    slot = min(WIDTH / len(timed), MAX_BAR + GAP)
    bars = []
    for i, run in enumerate(timed):
        # At least 2 units, so that a run of 0 seconds is still a visible bar.
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
    ticks = [Tick(percent, compact_duration(top * percent / 100)) for percent in (0, 50, 100)]
    return DurationChart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        longest=longest,
        ticks=ticks,
        first_label=moment(timed[0]),
        last_label=moment(timed[-1]) if len(timed) > 1 else "",
    )
