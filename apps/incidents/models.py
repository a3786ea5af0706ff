from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.checks.models import Check


class Incident(models.Model):
    class State(models.TextChoices):
        TRIGGERED = "triggered"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    class Kind(models.TextChoices):
        MISSED_HEARTBEAT = "missed_heartbeat", "Missed heartbeat"
        FAILURE_SIGNAL = "failure_signal", "Failure signal"

    class Resolution(models.TextChoices):
        RECOVERED = "recovered", "The check recovered"
        MANUAL = "manual", "Resolved by hand"
        PAUSED = "paused", "The check was paused"

    owner = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="incidents", db_column="check_id"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    state = models.CharField(max_length=15, choices=State.choices, default=State.TRIGGERED)
    opened_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=15, choices=Resolution.choices, blank=True)
    # What the alert says: expected_at, last_ping_at, exit_status, body_tail, run_id, ...
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # One incident, one notification stream: a check never has two open incidents.
            models.UniqueConstraint(
                fields=["owner"],
                condition=~Q(state="resolved"),
                name="one_open_incident_per_check",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.owner}"

    @property
    def is_open(self) -> bool:
        return self.state != self.State.RESOLVED


class UsedActionToken(models.Model):
    """Nonces of email action tokens already spent, so that a link works once."""

    nonce = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.nonce
