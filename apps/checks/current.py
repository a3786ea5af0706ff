"""What people read is current: a check's state with its pending pings folded in, on read.

The ping path only records (pings.py); the sweeper folds new pings into the stored state within
a sweep interval. In between, a check that has just pinged would still read as new, late or
down, while Healthchecks' clients poll the status right after a ping. So readers (the APIs and
the check pages) fold the pings the sweeper has not folded yet, through the same pure state
machine (state.apply_ping with the check's rules), in memory, writing nothing. The sweeper
stays the only writer, and its verdict (blind windows, incidents, the time that passed since
the last ping) is what the next read shows.

The cost is bounded: at most MAX_PENDING_ON_READ pings per check, oldest first, so what is
shown is a state the check really passed through (with a backlog that long the sweeper is
about to fold it anyway); a list loads the pending pings of all its checks in one query.
"""

from collections import defaultdict

from django.conf import settings
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from .models import Check, Ping
from .state import EvalState, apply_ping, state_to_json
from .sweeper import ping_event

MAX_PENDING_ON_READ = 20


def has_pending_pings(check: Check) -> bool:
    return check.n_pings > check.processed_n


def fold_pending(check: Check, pings: list[Ping]) -> EvalState:
    """The check's stored state with `pings` (its pending ones, in order) applied. Pure."""
    state = check.state()
    if not pings:
        return state
    rules = check.rules()
    for ping in pings:
        state = apply_ping(state, ping_event(ping), rules, settings.CLOCK_SKEW_ALLOWANCE).state
    return state


def pending_pings(checks: list[Check]) -> dict:
    """check id -> its first MAX_PENDING_ON_READ unfolded pings, in order; one query, none
    when no check has pending pings."""
    waiting = [check.id for check in checks if has_pending_pings(check)]
    by_check = defaultdict(list)
    if not waiting:
        return by_check
    pings = (
        Ping.objects.filter(owner_id__in=waiting, n__gt=F("owner__processed_n"))
        .annotate(row=Window(RowNumber(), partition_by=F("owner_id"), order_by=F("n").asc()))
        .filter(row__lte=MAX_PENDING_ON_READ)
        .order_by("owner_id", "n")
    )
    for ping in pings:
        by_check[ping.owner_id].append(ping)
    return by_check


def current_state(check: Check) -> EvalState:
    """The state people should read for `check`: stored state plus pending pings."""
    return fold_pending(check, pending_pings([check]).get(check.id, []))


def show_current(checks):
    """Overlay each check instance's status and evaluation state with its current state, for
    display (serializers, templates read them as usual). Writes nothing; the instances must
    not be saved afterwards. An instance already overlaid is left alone. Returns the list."""
    checks = [check for check in checks]
    todo = [check for check in checks if not getattr(check, "is_current_overlay", False)]
    pending = pending_pings(todo)
    for check in todo:
        pings = pending.get(check.id)
        if pings:
            state = fold_pending(check, pings)
            check.status, check.eval_state = state.status, state_to_json(state)
        check.is_current_overlay = True
    return checks
