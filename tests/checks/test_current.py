"""apps/checks/current.py: reads fold the pings the sweeper has not folded yet, with the same
state machine, bounded, in one query for a list, and never write."""

from datetime import timedelta

from apps.checks.current import (
    MAX_PENDING_ON_READ,
    current_state,
    pending_pings,
    show_current,
)
from apps.checks.models import Check
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from tests.factories import CheckFactory


def ping(check, kind, at):
    assert record_ping(ping=PingData(kind=kind, method="GET"), token=check.id, now=at)


def test_a_pending_success_makes_a_new_check_up(check, t0):
    ping(check, "success", t0)
    check.refresh_from_db()  # as readers load it: n_pings ahead of processed_n
    state = current_state(check)
    assert state.status == "up"
    assert state.last_checkin_at == t0
    check.refresh_from_db()
    assert (check.status, check.processed_n, check.eval_state) == ("new", 0, {})


def test_the_fold_on_read_agrees_with_the_sweep(check, t0):
    for minute, kind in enumerate(["success", "fail", "start", "success", "fail"]):
        ping(check, kind, t0 + timedelta(minutes=minute))
    check.refresh_from_db()
    read = current_state(check)
    sweep_due_checks(now=t0 + timedelta(minutes=4))
    check.refresh_from_db()
    assert read == check.state()


def test_at_most_the_oldest_pending_pings_are_folded(check, t0):
    for n in range(MAX_PENDING_ON_READ):
        ping(check, "success", t0 + timedelta(seconds=n))
    ping(check, "fail", t0 + timedelta(minutes=5))  # beyond the bound: not folded on read
    check.refresh_from_db()
    assert len(pending_pings([check])[check.id]) == MAX_PENDING_ON_READ
    assert current_state(check).status == "up"


def test_pending_pings_of_many_checks_are_one_query(team, t0, django_assert_num_queries):
    checks = [CheckFactory(team=team) for _ in range(6)]
    for check in checks[:4]:
        ping(check, "success", t0)
        ping(check, "fail", t0 + timedelta(seconds=1))
    checks = list(Check.objects.filter(team=team))
    with django_assert_num_queries(1):
        shown = show_current(checks)
    by_id = {check.id: check.status for check in shown}
    assert sorted(by_id.values()) == ["down"] * 4 + ["new"] * 2
    with django_assert_num_queries(0):
        show_current(shown)  # already overlaid


def test_checks_without_pending_pings_cost_no_query(check, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert show_current([check])[0].status == "new"


def test_folded_pings_are_not_folded_again(check, t0):
    ping(check, "fail", t0)
    sweep_due_checks(now=t0)
    check.refresh_from_db()
    assert pending_pings([check]) == {}
    assert current_state(check).status == "down"
