"""Thresholds of a few seconds, for short jobs: grace, maximum run time and progress timeout
in whole seconds, judged by the real sweeper at second precision (time walked as input)."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from apps.checks.models import Check
from apps.checks.pings import PingData, record_ping
from apps.checks.schedule import MIN_INTERVAL, MIN_THRESHOLD, interval_error
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident

S, MIN = timedelta(seconds=1), timedelta(minutes=1)
# settings.CLOCK_SKEW_ALLOWANCE in the tests (its default): every deadline gets it on top.
SKEW = 5 * S


def ping(check, kind="success", at=None, **facts):
    facts.setdefault("method", "POST")
    assert record_ping(ping=PingData(kind=kind, **facts), token=check.ping_token, now=at)


def status(check):
    check.refresh_from_db()
    return check.status


@pytest.mark.parametrize(
    "value, minimum, message",
    [
        (59 * S, MIN_INTERVAL, "Period must be at least 1 minute."),
        (60 * S, MIN_INTERVAL, None),
        (90 * S, MIN_INTERVAL, None),
        (0 * S, MIN_THRESHOLD, "Period must be at least 1 second."),
        (1 * S, MIN_THRESHOLD, None),
        (timedelta(days=365, seconds=1), MIN_THRESHOLD, "Period must be at most 365 days."),
    ],
    ids=["59s-period", "60s-period", "90s-period", "0s-threshold", "1s-threshold", "too-long"],
)
def test_interval_limits(value, minimum, message):
    assert interval_error(value, "Period", minimum) == message


def test_the_model_accepts_second_thresholds_but_not_a_sub_minute_period(team):
    check = Check(team=team, name="x", slug="x", grace=7 * S, max_runtime=3 * S)
    check.full_clean()
    check.period = 45 * S
    with pytest.raises(ValidationError) as caught:
        check.full_clean()
    assert caught.value.message_dict["period"] == ["Period must be at least 1 minute."]


def test_max_runtime_of_20_seconds_hangs_at_20_seconds(check, owner, t0):
    check.max_runtime = 20 * S
    check.save()
    ping(check, at=t0)
    rid = uuid.uuid4()
    ping(check, "start", at=t0 + MIN, run_id=rid)
    started = t0 + MIN
    sweep_due_checks(now=started + 20 * S + SKEW - S)
    assert status(check) == "up"
    assert check.runs.get(run_id=rid).outcome == "running"
    sweep_due_checks(now=started + 20 * S + SKEW)
    assert status(check) == "down"
    run = check.runs.get(run_id=rid)
    assert run.outcome == "hung"
    # Backdated to the exact second the limit passed, not to the sweep or a whole minute.
    assert run.ended_at == started + 20 * S + SKEW
    assert Incident.objects.get().kind == Incident.Kind.HUNG


def test_a_run_finishing_within_its_short_limit_stays_up(check, owner, t0):
    check.max_runtime = 20 * S
    check.save()
    rid = uuid.uuid4()
    ping(check, at=t0)
    ping(check, "start", at=t0 + MIN, run_id=rid)
    ping(check, "success", at=t0 + MIN + 19 * S, run_id=rid)
    sweep_due_checks(now=t0 + MIN + 30 * S)
    assert status(check) == "up"
    run = check.runs.get(run_id=rid)
    assert (run.outcome, run.duration) == ("succeeded", 19 * S)


def test_progress_timeout_of_15_seconds_stalls_a_silent_run(check, owner, t0):
    check.progress_timeout = 15 * S
    check.save()
    rid = uuid.uuid4()
    ping(check, at=t0)
    ping(check, "start", at=t0 + MIN, run_id=rid)
    ping(check, "progress", at=t0 + MIN + 10 * S, run_id=rid, done=1)
    # 15 s after the progress ping (plus the allowance), not after the start.
    sweep_due_checks(now=t0 + MIN + 10 * S + 15 * S + SKEW - S)
    assert status(check) == "up"
    sweep_due_checks(now=t0 + MIN + 10 * S + 15 * S + SKEW)
    assert status(check) == "down"
    assert check.runs.get(run_id=rid).outcome == "stalled"


def test_grace_of_10_seconds_after_a_90_second_period(check, owner, t0):
    check.period, check.grace = 90 * S, 10 * S
    check.save()
    ping(check, at=t0)
    sweep_due_checks(now=t0 + S)
    assert status(check) == "up"
    sweep_due_checks(now=t0 + 90 * S + SKEW)
    assert status(check) == "late"
    sweep_due_checks(now=t0 + 90 * S + SKEW + 10 * S - S)
    assert status(check) == "late"
    sweep_due_checks(now=t0 + 90 * S + SKEW + 10 * S)
    assert status(check) == "down"
