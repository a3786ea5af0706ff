"""Where notifications go (Channel), how a team groups them (TeamNotificationSettings), what is
owed to whom (Notification, the outbox row) and what was sent (Delivery, one outbound message
that may carry many grouped notifications).

    notify() ──> Notification(pending) ──flush (group window due)──> Delivery(pending)
                        │                                              │ task / retry beat
                        └── skipped (resolved before it went out)      v
                                                   sending ──> sent | pending (next_attempt_at)
                                                                     | failed (final)
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.incidents.models import Incident
from apps.teams.models import Team


def new_channel_secret() -> str:
    return secrets.token_urlsafe(32)


class Channel(models.Model):
    """A team's shared destination: an email address, a webhook, a chat (Slack/Mattermost,
    Discord, Microsoft Teams, Telegram), a push service (ntfy, Pushover), an SMS number or an
    incident tool (PagerDuty, Opsgenie). `config` holds the kind's settings, secrets included
    (see apps/notifications/forms.py: which are write-only)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email address"
        WEBHOOK = "webhook", "Webhook (JSON, signed)"
        SLACK = "slack", "Slack / Mattermost incoming webhook"
        NTFY = "ntfy", "ntfy (phone push)"
        PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"
        OPSGENIE = "opsgenie", "Opsgenie"
        TELEGRAM = "telegram", "Telegram"
        DISCORD = "discord", "Discord webhook"
        TEAMS = "teams", "Microsoft Teams (Workflows webhook)"
        PUSHOVER = "pushover", "Pushover"
        SMS = "sms", "SMS (Twilio)"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True)
    # Key of the HMAC-SHA256 signature on webhook deliveries; generated, never typed in.
    secret = models.CharField(max_length=100, default=new_channel_secret)
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_channel_name_per_team"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def target(self) -> str:
        return f"channel:{self.id}"

    @property
    def is_incident_aware(self) -> bool:
        """The remote side keeps an incident of its own that follows Tocsin's (triggered,
        acknowledged, resolved), so each Tocsin incident is its own message there."""
        return self.kind in INCIDENT_AWARE_KINDS


INCIDENT_AWARE_KINDS = frozenset({Channel.Kind.PAGERDUTY, Channel.Kind.OPSGENIE})


class TeamNotificationSettings(models.Model):
    """How a team's notifications are grouped. A team without a row uses the defaults from
    settings (NOTIFICATION_GROUP_WAIT, NOTIFICATION_GROUP_INTERVAL)."""

    class GroupBy(models.TextChoices):
        TEAM = "team", "Whole team"
        TAG = "tag", "Tag (the check's first tag)"
        ENVIRONMENT = "environment", "Environment"

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, primary_key=True, related_name="notification_settings"
    )
    group_by = models.CharField(max_length=12, choices=GroupBy.choices, default=GroupBy.TEAM)
    group_wait = models.DurationField(default=timedelta(seconds=30))
    group_interval = models.DurationField(default=timedelta(minutes=5))

    def __str__(self) -> str:
        return f"grouping of {self.team}"


class Delivery(models.Model):
    """One outbound message to one target: an email, a webhook POST, a chat message or a push.
    It carries one or more notifications (a group). Retries are driven by `next_attempt_at`,
    which a beat task scans; a task that vanishes with its worker loses nothing."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="deliveries")
    target = models.CharField(max_length=40)
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    address = models.CharField(max_length=254, blank=True)
    group_key = models.CharField(max_length=100, blank=True)
    is_test = models.BooleanField(default=False)
    summary = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The retry beat's scan: pending deliveries whose next attempt is due.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_due",
            ),
            # The grouping window looks up the last message a group sent.
            models.Index(
                fields=["team", "target", "group_key", "created_at"], name="delivery_group"
            ),
            models.Index(fields=["channel", "created_at"], name="delivery_channel_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.summary} to {self.address or self.target} ({self.status})"


class Notification(models.Model):
    """An outbox row: one notification owed to one target (a user or a channel) about one
    incident event. Written in the transaction that changed the incident (dispatch.notify), so it
    exists exactly when the change does; the flush puts it into a Delivery when its group is due.
    Unique per (incident, event, round, step, target): a retried or concurrent sweep never owes
    the same notification twice. Status, attempts and errors mirror its delivery's."""

    class Event(models.TextChoices):
        DOWN = "down"
        ESCALATION = "escalation"
        REMINDER = "reminder"
        RETRIGGERED = "retriggered"
        UNSILENCED = "unsilenced"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    class DeliveryStatus(models.TextChoices):
        PENDING = "pending"  # waiting for its group, or in a delivery not yet attempted
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"  # the incident resolved (or was acknowledged) before it went out

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=15, choices=Event.choices)
    round = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    # "user:<id>" or "channel:<id>": the uniqueness key, kept when the user or channel is deleted.
    target = models.CharField(max_length=40)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    # The email address (users) or channel name, as it was when the row was written.
    address = models.CharField(max_length=254)
    group_key = models.CharField(max_length=100, blank=True)
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
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
            models.UniqueConstraint(
                fields=["incident", "event", "round", "step", "target"],
                name="one_notification_per_event_step_and_target",
            ),
        ]
        indexes = [
            # The flush's scan: notifications not yet put into a delivery.
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending", delivery__isnull=True),
                name="notification_ungrouped",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.address} ({self.status})"


class DeliveryFailureReport(models.Model):
    """When the team was last told (by email) that deliveries to a target fail for good, so that
    a dead target produces one report per NOTIFICATION_FAILURE_REPORT_INTERVAL, not a storm."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    target = models.CharField(max_length=40)
    reported_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "target"], name="one_failure_report_per_target")
        ]

    def __str__(self) -> str:
        return f"{self.target} reported at {self.reported_at}"


class StatusReport(models.Model):
    """One status report (apps/notifications/status_reports.py) claimed for a user and a
    period. The unique row is the claim: however many workers or beats run the report task at
    once, one INSERT wins and sends, the others hit the constraint and skip."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    frequency = models.CharField(max_length=10)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "frequency", "period_start"], name="one_status_report_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.frequency} report of {self.user_id} from {self.period_start}"
