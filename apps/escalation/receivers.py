"""Escalation follows the incidents it is told about: the receivers of the incidents layer's
signals (apps/incidents/signals.py), connected in EscalationConfig.ready()."""

from django.dispatch import receiver

from apps.incidents.signals import (
    incident_acknowledged,
    incidents_opened,
    incidents_resolved,
    severities_raised,
)
from apps.teams.lifecycle import team_created

from . import engine
from .defaults import on_team_created


@receiver(incidents_opened, dispatch_uid="escalation.on_incidents_opened")
def on_incidents_opened(sender, *, incidents, now, **kwargs) -> None:
    engine.start_escalations(incidents, now=now)


@receiver(incidents_resolved, dispatch_uid="escalation.on_incidents_resolved")
def on_incidents_resolved(sender, *, incidents, now, **kwargs) -> None:
    engine.after_resolved_many(incidents, now=now)


@receiver(incident_acknowledged, dispatch_uid="escalation.on_incident_acknowledged")
def on_incident_acknowledged(sender, *, incident, now, **kwargs) -> None:
    engine.after_acknowledged(incident, now=now)


@receiver(severities_raised, dispatch_uid="escalation.on_severities_raised")
def on_severities_raised(sender, *, incidents, now, **kwargs) -> None:
    for incident in incidents:
        engine.after_severity_raised(incident, now=now)


# A new team starts with a default policy that emails every member.
team_created.connect(on_team_created, dispatch_uid="escalation-default-policy")
