"""Uptime from flips: a pure function of the flips, the status before the window and `now`."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.dashboard.charts import duration_chart
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
    def __init__(self, seconds, outcome="succeeded"):
        self.duration = None if seconds is None else timedelta(seconds=seconds)
        self.outcome = outcome


def test_chart_scales_bars_to_the_longest_run_oldest_first():
    runs = [FakeRun(60, "failed"), FakeRun(None), FakeRun(30), FakeRun(120)]  # newest first
    chart = duration_chart(runs, describe=lambda run: f"{run.duration}")
    assert [bar.outcome for bar in chart.bars] == ["succeeded", "succeeded", "failed"]
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == chart.height - 16  # the longest fills the plot
    assert heights[1] == pytest.approx(heights[0] / 4)
    assert heights[2] == pytest.approx(heights[0] / 2)
    assert all(bar.y + bar.height == chart.height for bar in chart.bars)
    assert chart.longest == timedelta(seconds=120)
    xs = [bar.x for bar in chart.bars]
    assert xs == sorted(xs) and xs[-1] + chart.bars[-1].width <= chart.width


def test_chart_of_zero_second_runs_still_draws_visible_bars():
    chart = duration_chart([FakeRun(0), FakeRun(0)], describe=str)
    assert all(bar.height >= 2 for bar in chart.bars)


def test_no_chart_without_timed_runs():
    assert duration_chart([], describe=str) is None
    assert duration_chart([FakeRun(None)], describe=str) is None
