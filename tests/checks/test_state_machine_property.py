"""Stateful property-based test: random pings, sweeps and clock jumps fed to the real ping path
and sweeper on the real database, checked after every sweep against the reference model in
reference_model.py (written apart from apps/checks/state.py).

After each sweep: the check's status, its flips, its incidents (kind, opened, resolved), its
runs, what each ping was classified as, and when the sweeper will look at it next all match the
model. After every step: never more than one open incident for the check.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apps.checks.models import Check, Flip, Ping, Run
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.teams.models import Membership
from tests.factories import CheckFactory, MembershipFactory

from .reference_model import ReferenceCheck

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND, MINUTE, HOUR, DAY = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
)

# (kind, exit status) as the ping endpoint records them: /ping/<uuid>/0 is a success with exit
# status 0, /ping/<uuid>/<n> a failure with exit status n; 75 (EX_TEMPFAIL) is transient.
PING_KINDS = [
    ("success", None),
    ("success", 0),
    ("fail", None),
    ("fail", 1),
    ("fail", 75),
    ("start", None),
    ("log", None),
]
PERIODS = [5 * MINUTE, HOUR, DAY, 7 * DAY]
GRACES = [MINUTE, 10 * MINUTE, HOUR, DAY]
CLOCK_JUMPS = st.one_of(
    st.integers(1, 120).map(lambda n: n * MINUTE),
    st.integers(1, 48).map(lambda n: n * HOUR),
    st.integers(1, 10).map(lambda n: n * DAY),
)
PING_GAPS = st.one_of(st.just(timedelta(0)), st.integers(1, 900).map(lambda n: n * SECOND))

SETTINGS = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class CheckMachine(RuleBasedStateMachine):
    """One fresh check per example, in a savepoint rolled back at teardown."""

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.check = None
        self.model = None
        self.now = T0
        self.last_ping_at = None

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def make_check(self, **fields) -> None:
        self.check = CheckFactory(**fields)
        MembershipFactory(team=self.check.team, role=Membership.Role.OWNER)
        self.model = ReferenceCheck(
            period=self.check.period,
            grace=self.check.grace,
            allowance=django_settings.CLOCK_SKEW_ALLOWANCE,
            failure_threshold=self.check.failure_threshold,
            recovery_threshold=self.check.recovery_threshold,
            transient_limit=self.check.transient_limit,
        )

    def move_clock_to(self, moment: datetime) -> None:
        self.now = moment
        self.model.advance(moment)  # deadlines are facts of time; applying them early is safe

    @rule(kind=st.sampled_from(PING_KINDS), gap=PING_GAPS)
    def ping(self, kind, gap):
        at = self.now + gap
        if self.last_ping_at is not None and at <= self.last_ping_at:
            at = self.last_ping_at + SECOND
        self.move_clock_to(at)
        self.last_ping_at = at
        name, exit_status = kind
        data = PingData(kind=name, method="POST", exit_status=exit_status)
        assert record_ping(ping=data, token=self.check.ping_token, now=at)
        self.model.ping(name, exit_status, at)

    @rule(kind=st.sampled_from(PING_KINDS), times=st.integers(2, 5), gap=PING_GAPS)
    def ping_repeatedly(self, kind, times, gap):
        """A job that keeps sending the same thing: streaks, thresholds, transient limits."""
        for _ in range(times):
            self.ping(kind, gap)

    @rule(jump=CLOCK_JUMPS)
    def advance_clock(self, jump):
        self.move_clock_to(self.now + jump)

    @precondition(lambda self: self.model is not None and self.model.next_deadline() is not None)
    @rule(offset=st.sampled_from([-SECOND, timedelta(0), SECOND]))
    def advance_to_next_deadline(self, offset):
        """Land right on (or one second either side of) a deadline: the boundary cases."""
        deadline = self.model.next_deadline()
        self.move_clock_to(max(deadline + offset, self.now))

    @rule()
    def sweep(self):
        result = sweep_due_checks(now=self.now)
        assert not result.errors
        self.model.advance(self.now)
        self.assert_matches_model()

    @invariant()
    def at_most_one_open_incident(self):
        if self.check is not None:
            open_incidents = Incident.objects.filter(owner=self.check).exclude(state="resolved")
            assert open_incidents.count() <= 1

    def assert_matches_model(self) -> None:
        model, check = self.model, Check.objects.get(pk=self.check.pk)
        assert check.status == model.status
        assert check.alert_after == model.next_deadline()
        flips = Flip.objects.filter(owner=check).order_by("happened_at", "id")
        assert [(f.from_status, f.to_status, f.happened_at) for f in flips] == model.transitions
        incidents = Incident.objects.filter(owner=check).order_by("opened_at", "id")
        assert [(i.kind, i.opened_at, i.resolved_at) for i in incidents] == [
            (i.kind, i.opened_at, i.resolved_at) for i in model.incidents
        ]
        open_incidents = [i for i in incidents if i.state != Incident.State.RESOLVED]
        assert len(open_incidents) == (1 if model.status == "down" else 0)
        assert model.open_incidents == len(open_incidents)
        pings = Ping.objects.filter(owner=check).order_by("n")
        assert list(pings.values_list("outcome", flat=True)) == model.outcomes
        runs = Run.objects.filter(owner=check)
        assert runs.count() == model.runs
        assert runs.filter(outcome=Run.Outcome.RUNNING).count() == model.open_runs


class DefaultRules(CheckMachine):
    """A period + grace check with every other setting at its default."""

    @initialize(period=st.sampled_from(PERIODS), grace=st.sampled_from(GRACES))
    def create_check(self, period, grace):
        self.make_check(period=period, grace=grace)
        assert (self.check.failure_threshold, self.check.recovery_threshold) == (1, 1)


class Thresholds(CheckMachine):
    """Failure and recovery thresholds above one (2 and 2 among them)."""

    @initialize(
        period=st.sampled_from(PERIODS),
        grace=st.sampled_from(GRACES),
        failure_threshold=st.integers(1, 3),
        recovery_threshold=st.integers(1, 3),
    )
    def create_check(self, period, grace, failure_threshold, recovery_threshold):
        self.make_check(
            period=period,
            grace=grace,
            failure_threshold=failure_threshold,
            recovery_threshold=recovery_threshold,
        )


def test_default_rules_match_the_reference_model(db):
    run_state_machine_as_test(DefaultRules, settings=SETTINGS)


def test_thresholds_match_the_reference_model(db):
    run_state_machine_as_test(Thresholds, settings=SETTINGS)
