"""Downtime from flips (pure): to the second, pauses excluded."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.checks.downtime import downtime_in, exact_duration

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
LATE_NOW = datetime(2027, 1, 1, tzinfo=UTC)


def at(days=0, hours=0, minutes=0, seconds=0):
    return START + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@pytest.mark.parametrize(
    ("before", "flips", "now", "total", "spells"),
    [
        ("up", [], LATE_NOW, timedelta(0), 0),
        ("down", [], LATE_NOW, timedelta(days=30), 1),
        (
            "up",
            [(at(1), "down"), (at(1, 2, 3, 4), "up")],
            LATE_NOW,
            timedelta(hours=2, minutes=3, seconds=4),
            1,
        ),
        # Down, then paused: the pause ends the downtime; down again after resuming.
        (
            "up",
            [(at(2), "down"), (at(2, 1), "paused"), (at(5), "new"), (at(6), "down")],
            LATE_NOW,
            timedelta(hours=1) + (END - at(6)),
            2,
        ),
        # Down since before the window: counted from the start; late is not down.
        ("down", [(at(0, 0, 0, 59), "up"), (at(3), "late")], LATE_NOW, timedelta(seconds=59), 1),
        # Still down at `now`, inside the window.
        ("up", [(at(10), "down")], at(10, 0, 0, 30), timedelta(seconds=30), 1),
        # Flips outside the window are ignored.
        ("up", [(START - timedelta(days=1), "down"), (END, "down")], LATE_NOW, timedelta(0), 0),
        # Down to down (a severity change) is one spell.
        (
            "up",
            [(at(1), "down"), (at(1, 1), "down"), (at(1, 2), "up")],
            LATE_NOW,
            timedelta(hours=2),
            1,
        ),
    ],
    ids=[
        "never",
        "down-all-along",
        "one-outage",
        "pause-excluded",
        "from-before",
        "ongoing",
        "outside",
        "down-to-down",
    ],
)
def test_downtime_in(before, flips, now, total, spells):
    result = downtime_in(flips, status_before=before, start=START, end=END, now=now)
    assert (result.total, result.spells) == (total, spells)


def test_window_entirely_in_the_future_has_no_downtime():
    result = downtime_in([], status_before="down", start=START, end=END, now=START)
    assert result.total == timedelta(0) and result.spells == 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (3600, "1 h 0 min 0 s"), (90061, "1 d 1 h 1 min 1 s"), (-5, "0 s")],
)
def test_exact_duration(seconds, text):
    assert exact_duration(timedelta(seconds=seconds)) == text
