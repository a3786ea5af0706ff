"""Monitoring the monitor: detect_blind_window, table-driven over sweep histories. No database."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.checks.monitor import BlindWindow, SweepSample, detect_blind_window

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
S, MIN = timedelta(seconds=1), timedelta(minutes=1)
EVERY = 5 * S  # the default SWEEP_INTERVAL
ALLOWANCE = 5 * S


def history(*segments, every=EVERY, newest=None):
    """Sweeps newest first, one every `every`, the newest at `newest` (default NOW - every).

    Each segment is (duration, pings folded per sweep), listed from the newest back in time.
    """
    at = newest or NOW - every
    samples = []
    for duration, per_sweep in segments:
        end = at - duration
        while at > end:
            samples.append(SweepSample(started_at=at, pings_folded=per_sweep))
            at -= every
    return samples


def per_sweep(per_minute, every=EVERY):
    return round(per_minute * every / MIN)


STEADY = per_sweep(60)  # 60 pings a minute


def quiet(per_minute):
    """Nothing over the last 2 minutes; before that, 30 minutes of `per_minute` pings a minute,
    all folded by one sweep in twelve."""
    return [
        SweepSample(s.started_at, per_minute if s.started_at < NOW - 2 * MIN and i % 12 == 0 else 0)
        for i, s in enumerate(history((2 * MIN, 0), (30 * MIN, 0)))
    ]


def dropped_to(recent_pings):
    """30 minutes at 60 pings a minute, then `recent_pings` in all over the last 2 minutes."""
    newest, *older = history((2 * MIN, 0), (30 * MIN, STEADY))
    return [SweepSample(newest.started_at, recent_pings), *older]


@pytest.mark.parametrize(
    ("sweeps", "expected"),
    [
        pytest.param([], None, id="no-history"),
        pytest.param(history((40 * MIN, STEADY)), None, id="normal-cadence"),
        pytest.param(history((40 * MIN, 0)), None, id="normal-cadence-idle-system"),
        # --- the sweeper stopped ---
        pytest.param(
            [SweepSample(NOW - 10 * MIN, STEADY)],
            BlindWindow(since=NOW - 10 * MIN, cause="sweeper"),
            id="sweeper-gap-single-sample",
        ),
        pytest.param(
            history((40 * MIN, STEADY), newest=NOW - 10 * MIN),
            BlindWindow(since=NOW - 10 * MIN, cause="sweeper"),
            id="sweeper-gap-after-steady-history",
        ),
        pytest.param(
            history((40 * MIN, STEADY), newest=NOW - 3 * EVERY - ALLOWANCE),
            None,
            id="gap-exactly-3-intervals-plus-allowance",
        ),
        pytest.param(
            history((40 * MIN, STEADY), newest=NOW - 3 * EVERY - ALLOWANCE - S),
            BlindWindow(since=NOW - 3 * EVERY - ALLOWANCE - S, cause="sweeper"),
            id="gap-just-over-3-intervals-plus-allowance",
        ),
        # --- a slow sweep is not a stopped sweeper: the gap counts from its end ---
        pytest.param(
            [SweepSample(NOW - 60 * S, STEADY, duration=55 * S)],
            None,
            id="slow-previous-sweep-ended-5s-ago",
        ),
        pytest.param(
            [SweepSample(NOW - 10 * MIN, STEADY, duration=MIN)],
            BlindWindow(since=NOW - 10 * MIN, cause="sweeper"),
            id="slow-sweep-then-stopped: blind since it started",
        ),
        pytest.param(
            history((40 * MIN, 0), newest=NOW - 2 * MIN),
            BlindWindow(since=NOW - 2 * MIN, cause="sweeper"),
            id="sweeper-gap-wins-over-ingest",
        ),
        # --- pings stopped arriving ---
        pytest.param(
            history((2 * MIN, 0), (30 * MIN, STEADY)),
            BlindWindow(since=NOW - 2 * MIN, cause="ingest"),
            id="ingest-drop-to-zero",
        ),
        pytest.param(
            history((2 * MIN, 0), (38 * MIN, STEADY)),
            BlindWindow(since=NOW - 2 * MIN, cause="ingest"),
            id="ingest-drop-longer-history",
        ),
        pytest.param(
            dropped_to(1),
            BlindWindow(since=NOW - 2 * MIN, cause="ingest"),
            id="ingest-drop-to-almost-zero",
        ),
        pytest.param(
            # 11 pings in 2 minutes: 5.5/min, below 10 % of 60/min.
            dropped_to(11),
            BlindWindow(since=NOW - 2 * MIN, cause="ingest"),
            id="ingest-just-below-drop-ratio",
        ),
        pytest.param(
            # 12 pings in 2 minutes: 6/min, exactly 10 % of the baseline: not a drop.
            dropped_to(12),
            None,
            id="ingest-at-drop-ratio",
        ),
        pytest.param(
            history((2 * MIN, per_sweep(30)), (30 * MIN, STEADY)),
            None,
            id="ingest-halved-is-not-an-outage",
        ),
        # --- a quiet system is not an outage ---
        pytest.param(
            quiet(9),
            None,
            id="quiet-baseline-below-minimum",
        ),
        pytest.param(
            quiet(10),
            BlindWindow(since=NOW - 2 * MIN, cause="ingest"),
            id="baseline-exactly-at-minimum",
        ),
        pytest.param(
            history((40 * MIN, 0)),
            None,
            id="quiet-all-along",
        ),
        # --- not enough history for a baseline ---
        pytest.param(history((2 * MIN, 0), (18 * MIN, STEADY)), None, id="only-20-minutes"),
        pytest.param(history((2 * MIN, 0)), None, id="only-the-recent-window"),
        pytest.param(
            history((2 * MIN, 0), (28 * MIN - EVERY, STEADY)), None, id="just-short-of-30-minutes"
        ),
    ],
)
def test_detect_blind_window(sweeps, expected):
    found = detect_blind_window(sweeps, now=NOW, sweep_interval=EVERY, allowance=ALLOWANCE)
    assert found == expected


@pytest.mark.parametrize(
    ("sweeps", "expected"),
    [
        pytest.param(
            history((40 * MIN, 60), every=MIN), None, id="one-minute-sweeps-steady-cadence"
        ),
        pytest.param(
            history((2 * MIN, 0), (30 * MIN, 60), every=MIN),
            BlindWindow(since=NOW - 2 * MIN, cause="ingest"),
            id="one-minute-sweeps-ingest-drop",
        ),
        pytest.param(
            # The previous sweep ran 2.5 minutes ago: late, but within 3 intervals + allowance.
            # The recent window holds no sweep at all, so nothing says pings stopped: the pings
            # of those minutes are waiting for this sweep to fold them.
            history((40 * MIN, 60), every=MIN, newest=NOW - 150 * S),
            None,
            id="one-minute-sweeps-slow-sweep-is-not-an-ingest-drop",
        ),
        pytest.param(
            history((40 * MIN, 60), every=MIN, newest=NOW - 3 * MIN - ALLOWANCE - S),
            BlindWindow(since=NOW - 3 * MIN - ALLOWANCE - S, cause="sweeper"),
            id="one-minute-sweeps-gap",
        ),
    ],
)
def test_detect_blind_window_with_slow_sweep_interval(sweeps, expected):
    found = detect_blind_window(sweeps, now=NOW, sweep_interval=MIN, allowance=ALLOWANCE)
    assert found == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, BlindWindow(since=NOW - 2 * MIN, cause="ingest"), id="defaults"),
        pytest.param({"min_baseline_per_minute": 61.0}, None, id="higher-minimum-baseline"),
        pytest.param(
            {"ingest_window": 1 * MIN},
            BlindWindow(since=NOW - 1 * MIN, cause="ingest"),
            id="shorter-ingest-window",
        ),
        pytest.param({"drop_ratio": 0.0}, None, id="drop-ratio-zero-never-fires"),
    ],
)
def test_detect_blind_window_settings(kwargs, expected):
    sweeps = history((2 * MIN, 0), (30 * MIN, STEADY))
    found = detect_blind_window(
        sweeps, now=NOW, sweep_interval=EVERY, allowance=ALLOWANCE, **kwargs
    )
    assert found == expected
