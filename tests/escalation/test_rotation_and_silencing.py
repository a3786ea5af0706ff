"""Rotations, silences and maintenance windows, with injected time. No database."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.escalation.rotation import Cadence, Override, RotationSpec, handoffs, on_call
from apps.escalation.silencing import CheckFacts, MaintenanceSpec, Matchers, SilenceSpec

RIGA = ZoneInfo("Europe/Riga")
NY = ZoneInfo("America/New_York")
WEEKLY = RotationSpec(
    members=(1, 2, 3), start_date=date(2026, 3, 2), handoff_time=time(9, 0), timezone="Europe/Riga"
)


@pytest.mark.parametrize(
    ("local", "who"),
    [
        (datetime(2026, 3, 2, 8, 59, tzinfo=RIGA), None),  # before the first shift
        (datetime(2026, 3, 2, 9, 0, tzinfo=RIGA), 1),
        (datetime(2026, 3, 9, 8, 59, tzinfo=RIGA), 1),
        (datetime(2026, 3, 9, 9, 0, tzinfo=RIGA), 2),
        (datetime(2026, 3, 16, 12, 0, tzinfo=RIGA), 3),
        (datetime(2026, 3, 23, 9, 0, tzinfo=RIGA), 1),
        # Riga moves to summer time on 2026-03-29; handoff stays at 09:00 local.
        (datetime(2026, 3, 30, 8, 59, tzinfo=RIGA), 1),
        (datetime(2026, 3, 30, 9, 0, tzinfo=RIGA), 2),
    ],
)
def test_weekly_rotation_follows_the_wall_clock(local, who):
    assert on_call(WEEKLY, local.astimezone(UTC)) == who


def test_daily_rotation_and_override():
    spec = RotationSpec(
        members=(1, 2),
        start_date=date(2026, 11, 1),
        handoff_time=time(18, 0),
        timezone="America/New_York",
        cadence=Cadence.DAILY,
        overrides=(
            Override(7, datetime(2026, 11, 3, 0, tzinfo=UTC), datetime(2026, 11, 3, 6, tzinfo=UTC)),
        ),
    )
    assert on_call(spec, datetime(2026, 11, 1, 19, 0, tzinfo=NY)) == 1
    assert on_call(spec, datetime(2026, 11, 2, 17, 0, tzinfo=NY)) == 1
    assert on_call(spec, datetime(2026, 11, 2, 18, 0, tzinfo=NY)) == 2
    assert on_call(spec, datetime(2026, 11, 3, 1, 0, tzinfo=UTC)) == 7  # the override wins


def test_handoffs_preview():
    after = datetime(2026, 3, 3, tzinfo=UTC)
    assert [who for _, who in handoffs(WEEKLY, after, 3)] == [2, 3, 1]
    assert handoffs(WEEKLY, after, 1)[0][0] == datetime(2026, 3, 9, 9, 0, tzinfo=RIGA)


def test_empty_rotation_has_nobody():
    spec = RotationSpec(
        members=(), start_date=date(2026, 1, 1), handoff_time=time(9), timezone="UTC"
    )
    assert on_call(spec, datetime(2026, 6, 1, tzinfo=UTC)) is None


DB = CheckFacts(id="a", tags=frozenset({"db", "nightly"}), environment="production")
WEB = CheckFacts(id="b", tags=frozenset({"web"}), environment="staging")
T = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("matchers", "matches_db", "matches_web"),
    [
        (Matchers(whole_team=True), True, True),
        (Matchers(check_ids=frozenset({"a"})), True, False),
        (Matchers(tags=frozenset({"db"})), True, False),
        (Matchers(environment="staging"), False, True),
        (Matchers(tags=frozenset({"db"}), environment="staging"), False, False),
        (Matchers(), False, False),
    ],
    ids=["team", "check", "tag", "environment", "tag-and-environment", "empty"],
)
def test_silence_matchers(matchers, matches_db, matches_web):
    silence = SilenceSpec(T, T + timedelta(hours=1), matchers)
    assert silence.covers(DB, T) is matches_db
    assert silence.covers(WEB, T) is matches_web


def test_silence_interval_is_half_open():
    silence = SilenceSpec(T, T + timedelta(hours=1), Matchers(whole_team=True))
    assert not silence.covers(DB, T - timedelta(seconds=1))
    assert silence.covers(DB, T)
    assert not silence.covers(DB, T + timedelta(hours=1))


def test_maintenance_window_across_a_daylight_saving_change():
    window = MaintenanceSpec(
        "30 2 * * *", "America/New_York", timedelta(hours=1), Matchers(whole_team=True)
    )
    # A normal night: 02:30-03:30 EST.
    assert window.covers(DB, datetime(2026, 3, 7, 2, 45, tzinfo=NY))
    assert not window.covers(DB, datetime(2026, 3, 7, 3, 45, tzinfo=NY))
    # 2026-03-08 has no 02:30: the window opens at 03:00 EDT and lasts an hour.
    assert window.window_at(datetime(2026, 3, 8, 7, 30, tzinfo=UTC)) == (
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 8, 0, tzinfo=UTC),
    )
    assert not window.covers(DB, datetime(2026, 3, 8, 4, 1, tzinfo=NY))
    # Back to 02:30 EDT the next night.
    assert window.next_windows(datetime(2026, 3, 8, 12, tzinfo=UTC), 1)[0][0] == datetime(
        2026, 3, 9, 6, 30, tzinfo=UTC
    )
