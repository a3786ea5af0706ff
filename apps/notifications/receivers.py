"""Notifications subscribe to the layers below: escalation says who is owed what
(apps/escalation/signals.py), incidents say what was acknowledged or resolved
(apps/incidents/signals.py). Connected in NotificationsConfig.ready(); every receiver writes
outbox rows in the sender's transaction and does no network I/O."""

from django.dispatch import receiver

from apps.escalation.signals import channel_directory, notifications_owed
from apps.incidents.signals import incident_acknowledged, incidents_resolved

from .dispatch import notify_acknowledged, notify_many, notify_resolved_many
from .models import Channel


@receiver(notifications_owed, dispatch_uid="notifications.on_notifications_owed")
def on_notifications_owed(sender, *, owed, now, **kwargs) -> None:
    notify_many(owed, now=now)


@receiver(incidents_resolved, dispatch_uid="notifications.on_incidents_resolved")
def on_incidents_resolved(sender, *, incidents, now, **kwargs) -> None:
    """Whoever was told that it was down hears that it is resolved."""
    notify_resolved_many(incidents, now=now)


@receiver(incident_acknowledged, dispatch_uid="notifications.on_incident_acknowledged")
def on_incident_acknowledged(sender, *, incident, by_user, now, **kwargs) -> None:
    notify_acknowledged(incident=incident, by_user=by_user, now=now)


@receiver(channel_directory, dispatch_uid="notifications.channel_directory")
def team_channel_names(sender, *, team_id, ids=None, **kwargs) -> dict[int, str]:
    channels = Channel.objects.filter(team_id=team_id)
    if ids is not None:
        channels = channels.filter(id__in=ids)
    return dict(channels.order_by("name").values_list("id", "name"))
