"""Uptime from flips: a pure function of the flips, the status before the window and `now`."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.dashboard.charts import (
    MAX_BAR,
    compact_duration,
    duration_chart,
    nice_ceiling,
    precise_duration,
)
from apps.dashboard.templatetags.dashboard import percent
from apps.dashboard.uptime import uptime_ratio

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)
DAY = timedelta(days=1)

CASES = {
    "up all the time": ("up", [], 1.0),
    "down all the time": ("down", [], 0.0),
    "never watched (new)": ("new", [], None),
    "paused all the time": ("paused", [], None),
    "down for a quarter of the window": ("up", [(18 * H, "down")], 0.75),
    "down then recovered": ("up", [(6 * H, "down"), (12 * H, "up")], 0.75),
    "late counts as up": ("up", [(6 * H, "late"), (7 * H, "up")], 1.0),
    "late then down": ("up", [(6 * H, "late"), (12 * H, "down")], 0.5),
    "paused time is left out": ("up", [(12 * H, "paused"), (18 * H, "down")], 2 / 3),
    "unknown time is left out": ("down", [(12 * H, "unknown")], 0.0),
    "first ping during the window": ("new", [(12 * H, "up"), (18 * H, "down")], 0.5),
    "flips outside the window ignored": ("up", [(-H, "down"), (DAY + H, "down")], 1.0),
    "flips in any order": ("up", [(12 * H, "up"), (6 * H, "down")], 0.75),
}


@pytest.mark.parametrize(("before", "offsets", "expected"), CASES.values(), ids=CASES)
def test_uptime_over_one_day(before, offsets, expected):
    flips = [(T0 + offset, status) for offset, status in offsets]
    ratio = uptime_ratio(flips, status_before=before, since=T0, now=T0 + DAY)
    if expected is None:
        assert ratio is None
    else:
        assert ratio == pytest.approx(expected)


def test_empty_or_reversed_window_has_no_uptime():
    assert uptime_ratio([], status_before="up", since=T0, now=T0) is None
    assert uptime_ratio([], status_before="up", since=T0, now=T0 - H) is None


PERCENTS = {
    "perfect": (1.0, "100 %"),
    "almost perfect never rounds up": (0.99999, "99.99 %"),
    "two decimals": (0.75, "75.00 %"),
    "small": (0.0001, "0.01 %"),
    "zero": (0.0, "0.00 %"),
    "none": (None, ""),
}


@pytest.mark.parametrize(("ratio", "text"), PERCENTS.values(), ids=PERCENTS)
def test_percent_filter(ratio, text):
    assert percent(ratio) == text


class FakeRun:
    def __init__(self, seconds, outcome="succeeded", label=""):
        self.duration = None if seconds is None else timedelta(seconds=seconds)
        self.outcome = outcome
        self.label = label


def chart_of(runs):
    return duration_chart(runs, describe=lambda run: f"{run.duration}", moment=lambda r: r.label)


def test_chart_scales_bars_to_a_round_axis_oldest_first():
    runs = [
        FakeRun(60, "failed", "c"),
        FakeRun(None),
        FakeRun(30, label="b"),
        FakeRun(120, label="a"),
    ]
    chart = chart_of(runs)  # newest first, as the page lists them
    assert [bar.outcome for bar in chart.bars] == ["succeeded", "succeeded", "failed"]
    heights = [bar.height for bar in chart.bars]
    # The longest, 120 s, fills an axis that tops at a round 2 minutes.
    assert [tick.label for tick in chart.ticks] == ["0 s", "1 min", "2 min"]
    assert heights[0] == pytest.approx(chart.height)
    assert heights[1] == pytest.approx(heights[0] / 4)
    assert heights[2] == pytest.approx(heights[0] / 2)
    assert all(bar.y + bar.height == chart.height for bar in chart.bars)
    assert chart.longest == timedelta(seconds=120)
    assert (chart.first_label, chart.last_label) == ("a", "c")
    xs = [bar.x for bar in chart.bars]
    assert xs == sorted(xs) and xs[-1] + chart.bars[-1].width <= chart.width


def test_one_run_is_one_narrow_bar_not_a_block():
    chart = chart_of([FakeRun(0.42, label="only")])
    (bar,) = chart.bars
    assert bar.width <= MAX_BAR
    assert bar.height == pytest.approx(chart.height * 0.42 / 0.5)
    assert [tick.label for tick in chart.ticks] == ["0 s", "250 ms", "500 ms"]
    assert (chart.first_label, chart.last_label) == ("only", "")


def test_many_runs_share_the_width():
    chart = chart_of([FakeRun(i + 1) for i in range(200)])
    assert len(chart.bars) == 200
    assert chart.bars[-1].x + chart.bars[-1].width <= chart.width
    assert all(bar.width >= 1 for bar in chart.bars)


def test_chart_of_zero_second_runs_still_draws_visible_bars():
    chart = chart_of([FakeRun(0), FakeRun(0)])
    assert all(bar.height >= 2 for bar in chart.bars)


def test_no_chart_without_timed_runs():
    assert chart_of([]) is None
    assert chart_of([FakeRun(None)]) is None


@pytest.mark.parametrize(
    ("seconds", "top"),
    [
        (0, 0.001),
        (0.0004, 0.001),
        (0.42, 0.5),
        (1, 1),
        (1.01, 1.5),
        (7, 8),
        (59, 60),
        (61, 90),
        (120, 120),
        (240, 240),
        (601, 900),
        (3601, 5400),
    ],
)
def test_axis_tops_at_a_round_value(seconds, top):
    assert nice_ceiling(seconds) == pytest.approx(top)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.0421, "0.042 s"),
        (0.5, "0.5 s"),
        (1.25, "1.25 s"),
        (12.3456, "12.346 s"),
        (59.9999, "60 s"),
        (65.25, "1 min 5.2 s"),
        (120, "2 min 0 s"),
        (3725.5, "1 h 2 min 5 s"),
    ],
)
def test_run_durations_keep_sub_second_precision(seconds, text):
    assert precise_duration(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (0.25, "250 ms"), (1.5, "1.5 s"), (45, "45 s"), (150, "2.5 min"), (5400, "1.5 h")],
)
def test_axis_labels_are_compact(seconds, text):
    assert compact_duration(seconds) == text
