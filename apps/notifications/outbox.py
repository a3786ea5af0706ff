"""Writing outbox rows and handing them to workers after commit."""

from datetime import datetime

from django.db import transaction

from apps.incidents.models import Incident
from apps.teams.models import Membership

from .models import Notification


def recipients_for(incident: Incident):
    """Team members with an email address. Viewers are told too: they are on the team."""
    return (
        Membership.objects.filter(team_id=incident.owner.team_id)
        .exclude(user__email="")
        .filter(user__is_active=True)
        .select_related("user")
    )


def queue_incident_notifications(*, incident: Incident, event: str, now: datetime) -> list[int]:
    """Write one outbox row per recipient for `event` and enqueue their delivery after commit.

    Must run inside the transaction that changed the incident, so that the rows exist exactly
    when the change does. A repeat writes nothing new (unique per incident, event, address).
    """
    rows = [
        Notification(
            incident=incident,
            event=event,
            recipient=m.user,
            address=m.user.email,
            created_at=now,
            updated_at=now,
        )
        for m in recipients_for(incident)
    ]
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(
        Notification.objects.filter(
            incident=incident, event=event, status=Notification.DeliveryStatus.PENDING
        ).values_list("id", flat=True)
    )
    enqueue_after_commit(ids)
    return ids


def enqueue_after_commit(notification_ids: list[int]) -> None:
    if not notification_ids:
        return
    from .tasks import deliver_notification_task

    def send():
        for notification_id in notification_ids:
            try:
                deliver_notification_task.delay(notification_id)
            except Exception:
                # The broker is down: the rows stay pending and the periodic redelivery picks
                # them up. Never let a broker outage undo or fail the committed change.
                import logging

                logging.getLogger(__name__).warning(
                    "could not enqueue notification %s; it will be redelivered", notification_id
                )

    transaction.on_commit(send)
