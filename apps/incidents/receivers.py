"""What a check's change means for its incidents: the receivers of the checks layer's signals
(apps/checks/signals.py), connected in IncidentsConfig.ready().

A sweep announces a whole batch of changed checks at once. Most of them change once, plainly
(down: open an incident; up or paused: resolve it), and those are written in bulk. A check whose
changes are more involved (flapping, several transitions in one sweep) or that depends on other
checks, or has dependents (whose holds follow each other in deadline order), is taken one by
one, in the order the sweep gave, exactly as a single change would be."""

from dataclasses import dataclass
from datetime import datetime

from django.dispatch import receiver

from apps.checks.models import Check
from apps.checks.signals import CheckChanged, Consequences, checks_changed, sweep_finished
from apps.checks.state import FAILURE_REASONS, FlappingChanged, Reason, Status, StatusChanged

from .models import Incident
from .services import (
    change_incident_kind,
    details_of,
    failure_details,
    failure_pings,
    new_incident,
    open_incident,
    open_incident_for,
    open_incidents,
    open_incidents_of,
    raise_due_severities,
    resolve_incidents,
    resolve_open_incident,
)


@dataclass(frozen=True)
class _Plain:
    """The one thing a plainly changed check does to its incidents."""

    change: CheckChanged
    effect: StatusChanged | None = None
    resolution: str = ""  # empty: open an incident; else resolve the open one so


@receiver(checks_changed, dispatch_uid="incidents.on_checks_changed")
def on_checks_changed(sender, *, changes: list[CheckChanged], now, **kwargs) -> Consequences:
    """Open, relabel and resolve incidents for the checks' status and flapping changes."""
    result = Consequences()
    linked = _with_dependencies([change.check.id for change in changes])
    plain, involved = [], []
    for change in changes:
        step = None if change.check.id in linked else _plain_step(change)
        if step is None:
            involved.append(change)
        elif step.effect is not None:
            plain.append(step)
    if plain:
        result += _apply_plain(plain, now=now)
    for change in involved:
        result += _apply_one(change, now=now)
    return result


@receiver(sweep_finished, dispatch_uid="incidents.on_sweep_finished")
def on_sweep_finished(sender, *, now, **kwargs) -> int:
    return raise_due_severities(now=now)


def _with_dependencies(check_ids) -> set:
    """The checks among `check_ids` that depend on others or have dependents."""
    edges = Check.depends_on.through.objects.filter(from_check_id__in=check_ids) | (
        Check.depends_on.through.objects.filter(to_check_id__in=check_ids)
    )
    linked = set()
    for parent, child in edges.values_list("to_check_id", "from_check_id"):
        linked.update((parent, child))
    return linked


def _plain_step(change: CheckChanged) -> _Plain | None:
    """The single incident step of a plain change (its effect None when it asks for nothing),
    or None when the change is not plain."""
    steps = []
    for effect in change.changes:
        if isinstance(effect, FlappingChanged):
            return None
        if change.was_flapping and effect.to_status != Status.PAUSED:
            continue  # while a check flaps, its flips open and close nothing
        if effect.to_status == Status.DOWN and effect.reason in FAILURE_REASONS:
            steps.append(_Plain(change, effect))
        elif effect.from_status == Status.DOWN and effect.to_status == Status.UP:
            steps.append(_Plain(change, effect, Incident.Resolution.RECOVERED))
        elif effect.to_status == Status.PAUSED:
            steps.append(_Plain(change, effect, Incident.Resolution.PAUSED))
    if len(steps) > 1:
        return None
    return steps[0] if steps else _Plain(change)


def _apply_plain(steps: list[_Plain], *, now: datetime) -> Consequences:
    result = Consequences()
    open_now = open_incidents_of([step.change.check.id for step in steps])
    opening, resolving = [], []
    for step in steps:
        check = step.change.check
        existing = open_now.get(check.id)
        if not step.resolution:
            # An open incident already tells the story: it is not opened (nor sent) again.
            result.opened += 1
            if existing is None:
                opening.append(step)
        elif existing is not None:
            existing.owner = check
            resolving.append((existing, step.effect.at, step.resolution))
            if step.resolution == Incident.Resolution.RECOVERED:
                result.resolved += 1
    pings = failure_pings([(s.change.check, s.effect.failure) for s in opening])
    incidents = []
    for step in opening:
        check, failure = step.change.check, step.effect.failure
        ping = pings.get((check.id, failure.n)) if failure is not None else None
        incidents.append(
            new_incident(
                check,
                kind=step.effect.reason.value,
                opened_at=step.effect.at,
                details=details_of(check, failure, ping),
                rules=step.change.rules,
            )
        )
    open_incidents(incidents, now=now)
    resolve_incidents(resolving, now=now)
    return result


def _apply_one(change: CheckChanged, *, now: datetime) -> Consequences:
    result = Consequences()
    check, rules, flapping = change.check, change.rules, change.was_flapping
    for effect in change.changes:
        if isinstance(effect, StatusChanged):
            # While a check flaps, its flips are recorded but open and close nothing.
            if not flapping or effect.to_status == Status.PAUSED:
                _incident_for_status_change(check, effect, rules=rules, now=now, result=result)
        elif isinstance(effect, FlappingChanged):
            flapping = effect.is_flapping
            _incident_for_flapping(check, effect, rules=rules, now=now, result=result)
    return result


def _incident_for_status_change(check, effect: StatusChanged, *, rules, now, result) -> None:
    if effect.to_status == Status.DOWN and effect.reason in FAILURE_REASONS:
        open_incident(
            check=check,
            kind=effect.reason.value,
            opened_at=effect.at,
            details=failure_details(check, effect.failure),
            now=now,
            rules=rules,
        )
        result.opened += 1
    elif effect.from_status == Status.DOWN and effect.to_status == Status.UP:
        if resolve_open_incident(
            check=check, resolved_at=effect.at, now=now, resolution=Incident.Resolution.RECOVERED
        ):
            result.resolved += 1
    elif effect.to_status == Status.PAUSED:
        resolve_open_incident(
            check=check, resolved_at=effect.at, now=now, resolution=Incident.Resolution.PAUSED
        )


def _incident_for_flapping(check, effect: FlappingChanged, *, rules, now, result) -> None:
    if effect.is_flapping:
        # One alert that the check flaps, not one per flip: relabel the open incident, or open
        # one (which notifies once) if the last flip was a recovery.
        if change_incident_kind(check=check, kind=Incident.Kind.FLAPPING, at=effect.at) is None:
            open_incident(
                check=check,
                kind=Incident.Kind.FLAPPING,
                opened_at=effect.at,
                details=failure_details(check, check.state().last_failure),
                now=now,
                rules=rules,
            )
            result.opened += 1
        return
    # Stable again: up means the episode is over; down means a plain failure remains.
    if check.status == Status.UP:
        if resolve_open_incident(
            check=check, resolved_at=effect.at, now=now, resolution=Incident.Resolution.RECOVERED
        ):
            result.resolved += 1
    elif open_incident_for(check) is not None:
        last = check.state().last_failure
        kind = last.reason.value if last else Reason.FAILURE_SIGNAL.value
        change_incident_kind(check=check, kind=kind, at=effect.at)
