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
        HUNG = "hung", "Hung run"
        STALLED = "stalled", "Stalled run"
        PARTIAL_OVER_LIMIT = "partial_over_limit", "Partial success over the limit"
        FLAPPING = "flapping", "Flapping"

    class Resolution(models.TextChoices):
        RECOVERED = "recovered", "The check recovered"
        MANUAL = "manual", "Resolved by hand"
        PAUSED = "paused", "The check was paused"

    Severity = Check.Severity

    owner = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="incidents", db_column="check_id"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    state = models.CharField(max_length=15, choices=State.choices, default=State.TRIGGERED)
    severity = models.CharField(max_length=10, choices=Severity.choices, default="warning")
    # When the severity rule raises this incident next; NULL when it will not (indexed below).
    severity_raise_at = models.DateTimeField(null=True, blank=True)
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
        indexes = [
            models.Index(
                fields=["severity_raise_at"],
                condition=Q(severity_raise_at__isnull=False),
                name="incident_severity_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.owner}"

    @property
    def is_open(self) -> bool:
        return self.state != self.State.RESOLVED


class IncidentEvent(models.Model):
    """The incident's timeline: everything that happened to it, in order."""

    class Kind(models.TextChoices):
        OPENED = "opened"
        SEVERITY_RAISED = "severity_raised"
        KIND_CHANGED = "kind_changed"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at}"


class UsedActionToken(models.Model):
    """Nonces of email action tokens already spent, so that a link works once."""

    nonce = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.nonce
