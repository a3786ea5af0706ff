"""What a check's change means for its incidents: the receivers of the checks layer's signals
(apps/checks/signals.py), connected in IncidentsConfig.ready()."""

from django.dispatch import receiver

from apps.checks.signals import CheckChanged, Consequences, checks_changed, sweep_finished
from apps.checks.state import FAILURE_REASONS, FlappingChanged, Reason, Status, StatusChanged

from .models import Incident
from .services import (
    change_incident_kind,
    failure_details,
    open_incident,
    open_incident_for,
    raise_due_severities,
    resolve_open_incident,
)


@receiver(checks_changed, dispatch_uid="incidents.on_checks_changed")
def on_checks_changed(sender, *, changes: list[CheckChanged], now, **kwargs) -> Consequences:
    """Open, relabel and resolve incidents for the checks' status and flapping changes."""
    result = Consequences()
    for change in changes:
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


@receiver(sweep_finished, dispatch_uid="incidents.on_sweep_finished")
def on_sweep_finished(sender, *, now, **kwargs) -> int:
    return raise_due_severities(now=now)


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
