import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.teams.models import Team

from . import schedule
from .state import CheckSnapshot, Signal, Status


def _raise_if_out_of_range(value, label):
    message = schedule.interval_error(value, label)
    if message:
        raise ValidationError(message)


def validate_period(value):
    _raise_if_out_of_range(value, "Period")


def validate_grace(value):
    _raise_if_out_of_range(value, "Grace")


# The sweeper only looks at checks whose status can still change on its own; paused and new
# checks have alert_after NULL, down checks too, so the partial index stays small.
SWEEPABLE = Q(alert_after__isnull=False)


class CheckQuerySet(models.QuerySet):
    def for_team_ids(self, team_ids):
        return self.filter(team_id__in=team_ids)

    def due(self, now):
        """Checks the sweeper must evaluate at `now` (served by the check_due partial index)."""
        return self.filter(SWEEPABLE, alert_after__lte=now)


class Check(models.Model):
    Status = models.TextChoices("Status", [(s.name, s.value) for s in Status])

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    tags = models.CharField(max_length=500, blank=True, help_text="Space-separated.")
    description = models.TextField(blank=True, max_length=5000)
    environment = models.CharField(max_length=50, blank=True)
    ping_token = models.UUIDField(unique=True, default=uuid.uuid4)
    period = models.DurationField(default=timedelta(days=1), validators=[validate_period])
    grace = models.DurationField(default=timedelta(hours=1), validators=[validate_grace])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    # Facts written by the ping path: the last ping that counts (success or fail) and its kind.
    last_ping_at = models.DateTimeField(null=True, blank=True)
    last_signal = models.CharField(max_length=10, blank=True, default="")
    last_start_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Next moment the sweeper must evaluate this check; NULL when nothing can change by itself.
    alert_after = models.DateTimeField(null=True, blank=True)
    # Counts every ping; each Ping row stores its number so that pruning is one DELETE.
    n_pings = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CheckQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "slug"], name="unique_check_slug_per_team"),
        ]
        indexes = [
            models.Index(fields=["alert_after"], condition=SWEEPABLE, name="check_due"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tag_list(self) -> list[str]:
        return self.tags.split()

    def snapshot(self) -> CheckSnapshot:
        return CheckSnapshot(
            status=Status(self.status),
            period=self.period,
            grace=self.grace,
            last_ping_at=self.last_ping_at,
            last_signal=Signal(self.last_signal) if self.last_signal else None,
            paused_at=self.paused_at,
        )


class Ping(models.Model):
    class Kind(models.TextChoices):
        SUCCESS = "success"
        FAIL = "fail"
        START = "start"
        LOG = "log"

    owner = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="pings", db_column="check_id"
    )
    n = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    received_at = models.DateTimeField()
    run_id = models.UUIDField(null=True, blank=True)
    exit_status = models.PositiveSmallIntegerField(null=True, blank=True)
    method = models.CharField(max_length=10)
    remote_addr = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    # Raw bytes: a job's output is not always UTF-8 and we must not lose it by decoding.
    body = models.BinaryField(default=b"")
    body_truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["-n"]
        indexes = [models.Index(fields=["owner", "n"], name="ping_check_n")]

    def __str__(self) -> str:
        return f"{self.kind} ping #{self.n} of {self.owner_id}"

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")

    def body_tail(self, lines: int = 20, max_chars: int = 2000) -> str:
        tail = "\n".join(self.body_text.rstrip().splitlines()[-lines:])
        return tail[-max_chars:]


class Flip(models.Model):
    owner = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="flips", db_column="check_id"
    )
    from_status = models.CharField(max_length=10, choices=Check.Status.choices)
    to_status = models.CharField(max_length=10, choices=Check.Status.choices)
    happened_at = models.DateTimeField()
    reason = models.CharField(max_length=40)

    class Meta:
        ordering = ["-happened_at", "-id"]
        indexes = [models.Index(fields=["owner", "-happened_at"], name="flip_check_time")]

    def __str__(self) -> str:
        return f"{self.owner_id}: {self.from_status} -> {self.to_status}"


class SweepRun(models.Model):
    """One sweep, for monitoring the monitor (/healthz, the dashboard banner)."""

    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.PositiveIntegerField()
    examined = models.PositiveIntegerField()
    changed = models.PositiveIntegerField()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"sweep at {self.started_at}: {self.examined} examined, {self.changed} changed"
