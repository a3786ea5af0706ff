"""prune_pings keeps the newest PINGS_KEPT_PER_CHECK pings of each check and nothing else."""

from datetime import timedelta

import pytest

from apps.checks.models import Check, Ping
from apps.checks.pings import PingData, prune_pings, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.checks.tasks import prune_pings_task
from tests.factories import CheckFactory, TeamFactory


def ping_n_times(check: Check, times: int, t0, start: int = 0) -> None:
    for i in range(start, start + times):
        # All stamped at the same second: "newest" is the ping number, not the time.
        assert record_ping(
            ping=PingData(kind="success", method="POST", body=f"run {i}".encode()),
            token=check.ping_token,
            now=t0 + timedelta(seconds=1),
        )
    # Pruning never deletes a ping the sweeper has not folded in yet.
    sweep_due_checks(now=t0 + timedelta(seconds=2))


def kept(check: Check) -> list[int]:
    return sorted(Ping.objects.filter(owner=check).values_list("n", flat=True))


@pytest.fixture
def keep_three(settings):
    settings.PINGS_KEPT_PER_CHECK = 3


@pytest.fixture
def checks(team, t0):
    busy, quiet, exact, silent = (CheckFactory(team=team) for _ in range(4))
    elsewhere = CheckFactory(team=TeamFactory())
    ping_n_times(busy, 7, t0)
    ping_n_times(quiet, 2, t0)
    ping_n_times(exact, 3, t0)
    ping_n_times(elsewhere, 5, t0)
    return busy, quiet, exact, silent, elsewhere


def test_keeps_the_newest_n_of_each_check(keep_three, checks):
    busy, quiet, exact, silent, elsewhere = checks
    untouched = set(Ping.objects.filter(owner__in=[quiet, exact]).values_list("id", flat=True))

    assert prune_pings() == 4 + 2

    assert kept(busy) == [5, 6, 7]
    assert [bytes(p.body) for p in Ping.objects.filter(owner=busy).order_by("n")] == [
        b"run 4",
        b"run 5",
        b"run 6",
    ]
    assert kept(elsewhere) == [3, 4, 5]
    assert kept(silent) == []
    # Checks at or under the limit keep every row, the very same rows.
    assert set(Ping.objects.filter(owner__in=[quiet, exact]).values_list("id", flat=True)) == (
        untouched
    )


def test_pruning_leaves_the_checks_alone_and_numbering_goes_on(keep_three, checks, t0):
    busy = checks[0]
    before = set(Check.objects.values_list("id", "n_pings", "last_ping_at", "alert_after"))
    prune_pings()
    assert set(Check.objects.values_list("id", "n_pings", "last_ping_at", "alert_after")) == before

    ping_n_times(busy, 1, t0, start=7)
    assert kept(busy) == [5, 6, 7, 8]
    assert prune_pings() == 1
    assert kept(busy) == [6, 7, 8]


def test_a_second_prune_deletes_nothing(keep_three, checks):
    prune_pings()
    assert prune_pings() == 0


def test_keep_argument_overrides_the_setting(keep_three, checks):
    busy, quiet = checks[:2]
    assert prune_pings(keep=1) == 6 + 1 + 2 + 4
    assert kept(busy) == [7]
    assert kept(quiet) == [2]


def test_prune_is_one_statement(keep_three, checks, django_assert_num_queries):
    with django_assert_num_queries(1):
        prune_pings()


def test_prune_task_reports_the_count(keep_three, checks):
    assert prune_pings_task().startswith("pruned 6 pings and ")
