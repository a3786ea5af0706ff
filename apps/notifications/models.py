from django.conf import settings
from django.db import models

from apps.incidents.models import Incident


class Notification(models.Model):
    """An outbox row: written in the transaction that opens or resolves an incident, delivered by
    a Celery task after commit. The row, not the task, is the source of truth."""

    class Event(models.TextChoices):
        DOWN = "down"
        RESOLVED = "resolved"

    class Channel(models.TextChoices):
        EMAIL = "email"

    class DeliveryStatus(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=10, choices=Event.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    address = models.CharField(max_length=254)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Exactly one notification per incident, event and address, however often the
            # sweep that writes it is retried.
            models.UniqueConstraint(
                fields=["incident", "event", "channel", "address"],
                name="one_notification_per_event_and_address",
            ),
        ]
        indexes = [
            models.Index(
                fields=["updated_at"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="notification_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.address} ({self.status})"
