"""The set-based sweep (apps/checks/sweeper.py): a batch is claimed, folded and written as one
set, and gives exactly what folding its checks one by one gives; its query count does not grow
with its size; one poisoned check costs only itself; an idle sweep reads one index entry."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from apps.checks.models import Check, Flip, Ping, Run, SweepRun
from apps.checks.pings import PingData, record_ping
from apps.checks.quarantine import RETRY_BROKEN_CHECK_AFTER
from apps.checks.sweeper import earliest_due_at, sweep_due_checks
from apps.incidents.models import Incident, IncidentEvent
from apps.notifications.models import Notification
from tests.factories import MembershipFactory, TeamFactory

SEC, MIN, DAY = timedelta(seconds=1), timedelta(minutes=1), timedelta(days=1)


class Rollback(Exception):
    """Raised to undo a savepoint on purpose, after its outcome was read."""


def minute_checks(team, count: int, **fields) -> list[Check]:
    """`count` new checks with a 1-minute period and grace, in name order."""
    return Check.objects.bulk_create(
        Check(
            team=team,
            name=f"job-{i:04d}",
            slug=f"job-{i:04d}",
            period=MIN,
            grace=MIN,
            **fields,
        )
        for i in range(count)
    )


def ping_all(checks, at, kind=Ping.Kind.SUCCESS) -> None:
    for check in checks:
        record_ping(ping=PingData(kind=kind, method="GET"), token=check.ping_token, now=at)


# --- the property: batched == one by one ---------------------------------------------------------

CHECK_SETTINGS = st.fixed_dictionaries(
    {
        "period": st.sampled_from([MIN, 2 * MIN, 5 * MIN]),
        "grace": st.sampled_from([30 * SEC, MIN, 3 * MIN]),
        "failure_threshold": st.integers(1, 2),
        "recovery_threshold": st.integers(1, 2),
        "flap_threshold": st.sampled_from([0, 0, 3]),
        "depends_on_previous": st.booleans(),
    }
)
PING = st.tuples(
    st.just("ping"),
    st.integers(0, 7),  # which check (modulo the number of checks)
    st.sampled_from([Ping.Kind.SUCCESS, Ping.Kind.SUCCESS, Ping.Kind.FAIL, Ping.Kind.START]),
)
SWEEP = st.tuples(st.just("sweep"), st.integers(1, 400))  # seconds the clock advances
SCENARIO = st.tuples(
    st.lists(CHECK_SETTINGS, min_size=1, max_size=6),
    st.lists(st.one_of(PING, SWEEP), min_size=1, max_size=30),
)


def run_scenario(team, setup, steps, t0, *, batch_size: int) -> dict:
    """Create the checks, play the pings and the sweeps, and read back everything the sweeps
    wrote, keyed by check name (ids differ between runs)."""
    checks = []
    for i, options in enumerate(setup):
        options = dict(options)
        depends = options.pop("depends_on_previous")
        check = Check.objects.create(team=team, name=f"c{i}", slug=f"c{i}", **options)
        if depends and checks:
            check.depends_on.add(checks[-1])
        checks.append(check)
    now = t0
    for step in steps:
        if step[0] == "ping":
            check = checks[step[1] % len(checks)]
            record_ping(ping=PingData(kind=step[2], method="GET"), token=check.ping_token, now=now)
            now += SEC
        else:
            now += step[1] * SEC
            sweep_due_checks(now=now, batch_size=batch_size)
    sweep_due_checks(now=now + 10 * MIN, batch_size=batch_size)
    return outcome(team)


def without_ids(detail: dict) -> dict:
    """A timeline detail without row ids, which differ between the two runs (the parent's
    check is named beside its incident's id)."""
    return {key: value for key, value in detail.items() if key != "parent_incident"}


def outcome(team) -> dict:
    checks = Check.objects.filter(team=team)
    incidents = Incident.objects.filter(owner__team=team)
    return {
        "checks": sorted(
            checks.values_list("name", "status", "eval_state", "processed_n", "alert_after")
        ),
        "flips": sorted(
            Flip.objects.filter(owner__team=team).values_list(
                "owner__name", "from_status", "to_status", "happened_at", "reason"
            )
        ),
        "runs": sorted(
            Run.objects.filter(owner__team=team).values_list(
                "owner__name", "started_at", "ended_at", "outcome", "start_n", "end_n"
            ),
            key=repr,
        ),
        "pings": sorted(
            Ping.objects.filter(owner__team=team).values_list("owner__name", "n", "outcome")
        ),
        "incidents": sorted(
            incidents.values_list(
                "owner__name",
                "kind",
                "state",
                "opened_at",
                "resolved_at",
                "resolution",
                "severity",
                "hold",
                "suppressed_by__owner__name",
                "next_escalation_at",
                "escalation_position",
            ),
            key=repr,
        ),
        "events": sorted(
            (
                (name, opened_at, kind, at, without_ids(detail))
                for name, opened_at, kind, at, detail in IncidentEvent.objects.filter(
                    incident__owner__team=team
                ).values_list(
                    "incident__owner__name", "incident__opened_at", "kind", "at", "detail"
                )
            ),
            key=repr,
        ),
        "outbox": sorted(
            Notification.objects.filter(incident__owner__team=team).values_list(
                "incident__owner__name", "incident__opened_at", "event", "round", "step", "target"
            )
        ),
    }


@settings(
    max_examples=20,
    deadline=None,
    # Shrinking a failure replays whole sweeps many times over; the example found is printed.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=SCENARIO)
def test_a_batched_sweep_writes_what_sweeping_check_by_check_writes(db, t0, scenario):
    setup, steps = scenario
    team = TeamFactory()
    MembershipFactory(team=team, role="owner")
    MembershipFactory(team=team, role="member")
    found = {}
    for batch_size in (200, 1):
        try:
            with transaction.atomic():
                found[batch_size] = run_scenario(team, setup, steps, t0, batch_size=batch_size)
                raise Rollback
        except Rollback:
            pass
    for name in found[1]:
        batched, one_by_one = found[200][name], found[1][name]
        only_batched = [row for row in batched if row not in one_by_one]
        only_one_by_one = [row for row in one_by_one if row not in batched]
        assert batched == one_by_one, (name, only_batched, only_one_by_one)


# --- a poisoned check ----------------------------------------------------------------------------


def test_one_poisoned_check_in_a_batch_of_200_costs_only_itself(team, owner, t0, caplog):
    checks = minute_checks(team, 200)
    ping_all(checks, t0)
    sweep_due_checks(now=t0 + SEC)  # new -> up
    poisoned = checks[117]
    # A state this version cannot read (written by a newer release, or by hand): reading it
    # raises. No constraint stops such a row, and it sits in the middle of the batch.
    Check.objects.filter(id=poisoned.id).update(eval_state={"last_checkin_at": "yesterday"})
    down_at = t0 + 2 * MIN + django_settings.CLOCK_SKEW_ALLOWANCE + SEC

    result = sweep_due_checks(now=down_at, batch_size=200)

    assert result.examined == 200
    assert len(result.errors) == 1 and result.errors[0].startswith(str(poisoned.id))
    others = Check.objects.exclude(id=poisoned.id)
    assert others.filter(status=Check.Status.DOWN).count() == 199
    assert Incident.objects.count() == 199
    assert not Incident.objects.filter(owner=poisoned).exists()
    assert Notification.objects.filter(event="down").count() == 199
    assert Flip.objects.filter(to_status="down").count() == 199
    poisoned.refresh_from_db()
    assert poisoned.status == Check.Status.UP
    assert poisoned.alert_after == down_at + RETRY_BROKEN_CHECK_AFTER
    assert not Flip.objects.filter(owner=poisoned, to_status__in=["late", "down"]).exists()
    assert "redoing it check by check" in caplog.text
    assert f"sweeping check {poisoned.id} failed" in caplog.text


# --- query counts --------------------------------------------------------------------------------


def queries_of_one_sweep(team, size: int, t0) -> dict[str, int]:
    """Queries of the sweeps that turn `size` checks new -> up (folding a ping each), up ->
    late, and late -> down (incidents, timeline, outbox rows), all in one batch."""
    checks = minute_checks(team, size)
    ping_all(checks, t0)
    counts = {}
    allowance = django_settings.CLOCK_SKEW_ALLOWANCE
    sweeps = (
        ("new->up", t0 + SEC),
        ("up->late", t0 + MIN + allowance + SEC),
        ("late->down", t0 + 2 * MIN + allowance + SEC),
    )
    for name, at in sweeps:
        with CaptureQueriesContext(connection) as queries:
            result = sweep_due_checks(now=at, batch_size=size)
        assert result.examined == size and result.changed == size, (name, str(result))
        counts[name] = len(queries.captured_queries)
    assert Incident.objects.filter(owner__team=team).count() == size
    assert Notification.objects.filter(incident__owner__team=team).count() == 2 * size
    return counts


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="SQLite writes the batch's check rows one compare-and-set at a time (no UPDATE ... "
    "FROM unnest(...) RETURNING path there), so its count grows by design",
)
def test_the_queries_of_a_batch_do_not_grow_with_its_size(db, t0):
    counts = {}
    for size in (10, 200):
        team = TeamFactory()
        MembershipFactory(team=team, role="owner")
        MembershipFactory(team=team, role="member")
        counts[size] = queries_of_one_sweep(team, size, t0)
        t0 += DAY
        Check.objects.filter(team=team).update(alert_after=None)  # out of the next run's way
    assert counts[200] == counts[10], counts
    # And they are few: the whole down sweep, with its incidents and outbox rows.
    assert counts[200]["late->down"] <= 40, counts


# --- the idle sweep ------------------------------------------------------------------------------


def test_an_idle_sweep_reads_one_index_entry_and_records_itself(team, t0):
    Check.objects.bulk_create(
        Check(
            team=team,
            name=f"idle-{i}",
            slug=f"idle-{i}",
            status=Check.Status.UP,
            alert_after=t0 + DAY + i * SEC,
        )
        for i in range(50)
    )
    assert earliest_due_at() == t0 + DAY

    with CaptureQueriesContext(connection) as queries:
        result = sweep_due_checks(now=t0)

    assert (result.examined, result.changed, result.errors) == (0, 0, [])
    assert SweepRun.objects.get().started_at == t0
    on_checks = [q["sql"] for q in queries.captured_queries if 'FROM "checks_check"' in q["sql"]]
    # No claim, no ping lookup: the earliest deadline said there was nothing to do.
    assert len(on_checks) == 1, on_checks
    assert "FOR UPDATE" not in on_checks[0]


assert connection  # for the skipif condition string, evaluated in this module
