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

    class Hold(models.TextChoices):
        SUPPRESSED = "suppressed", "Suppressed: a check it depends on is down"
        SILENCED = "silenced", "Silenced"

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

    # Escalation (apps/escalation/engine.py). The policy as it was when the incident opened, so
    # that editing the policy never confuses an escalation under way.
    policy_snapshot = models.JSONField(default=dict, blank=True)
    policy_name = models.CharField(max_length=100, blank=True)
    escalation_position = models.JSONField(default=dict, blank=True)
    # When the escalation sweep must look at this incident next (a step, a reminder, an
    # acknowledgment timeout, a silence ending); NULL when nothing is due. Indexed below.
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    # Why notifications are held back, if they are; the links below say by what.
    hold = models.CharField(max_length=12, choices=Hold.choices, blank=True)
    # The parent check's incident this one was opened under ("caused by db-health"). Kept after
    # the release, for the record.
    suppressed_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="dependents"
    )
    silenced_by = models.ForeignKey(
        "escalation.Silence",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
    )
    silenced_by_window = models.ForeignKey(
        "escalation.MaintenanceWindow",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
    )
    last_notified_at = models.DateTimeField(null=True, blank=True)

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
            models.Index(
                fields=["next_escalation_at"],
                condition=Q(next_escalation_at__isnull=False),
                name="incident_escalation_due",
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
        # Written by apps/notifications for each send: to whom, which channel, the outcome.
        NOTIFIED = "notified"
        NOTIFY_FAILED = "notify_failed"
        ESCALATED = "escalated"  # a step fired (step, round, targets)
        REMINDED = "reminded"
        ESCALATE_REQUESTED = "escalate_now"  # "not me": someone asked for the next step
        RETRIGGERED = "retriggered"  # acknowledged, but still failing after the ack timeout
        SILENCED = "silenced"
        UNSILENCED = "unsilenced"
        SUPPRESSED = "suppressed"
        RELEASED = "released"  # the parent recovered and this incident is still open
        NOBODY_ON_CALL = "nobody_on_call"
        POLICY_SKIPPED = "policy_skipped"  # the policy does not handle this severity
        NOTE = "note"  # a team member's words on the incident (text, by, by_id)

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
