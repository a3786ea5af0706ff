"""What the checks layer announces to the layers above it, which subscribe in their
AppConfig.ready(). Checks never imports them: this module is the whole contract.

Both signals are sent inside the sweep's transaction, so whatever a receiver writes (incidents,
timeline events, outbox rows) commits or rolls back together with the checks' new state.
Receivers must let exceptions through: the sweep then redoes its batch check by check and
quarantines the check that fails.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.dispatch import Signal

from .models import Check
from .rules import Rules
from .state import FlappingChanged, StatusChanged


@dataclass(frozen=True)
class CheckChanged:
    """One check whose status or flapping changed in a sweep (or by pause / resume).

    `check` carries its new status and evaluation state; `changes` are the transitions in the
    order they happened; `was_flapping` is whether the check flapped before the first of them
    (while a check flaps, its flips open and close nothing)."""

    check: Check
    rules: Rules
    changes: tuple[StatusChanged | FlappingChanged, ...]
    was_flapping: bool


@dataclass
class Consequences:
    """What the receivers of `checks_changed` did about the changes, for the sweep's log."""

    opened: int = 0
    resolved: int = 0

    def __add__(self, other: "Consequences") -> "Consequences":
        return Consequences(self.opened + other.opened, self.resolved + other.resolved)


# Sent with changes=list[CheckChanged] (a whole batch at once) and now=datetime; each receiver
# returns Consequences.
checks_changed = Signal()

# Sent once at the end of each sweep with now=datetime, for work that falls due with time
# (e.g. raising the severity of incidents open too long); receivers return how many things
# they changed.
sweep_finished = Signal()


def announce_changes(changes: Iterable[CheckChanged], *, now) -> Consequences:
    changes = list(changes)
    total = Consequences()
    if not changes:
        return total
    for _receiver, consequences in checks_changed.send(sender=Check, changes=changes, now=now):
        total += consequences or Consequences()
    return total


def announce_sweep_finished(*, now) -> int:
    return sum(count or 0 for _receiver, count in sweep_finished.send(sender=Check, now=now))
