"""Who hears about an incident, when, and when not: escalation policies and their steps, on-call
rotations, silences and maintenance windows. Every object belongs to a team. The rules live in
policy.py, rotation.py and silencing.py; `*_spec()` / `snapshot()` turn rows into their inputs."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.teams.models import Team

from .policy import PolicySnapshot, StepSnapshot, Target, TargetKind
from .rotation import Cadence, Override, RotationSpec
from .silencing import MaintenanceSpec, Matchers, SilenceSpec

SEVERITY_NAMES = ("info", "warning", "critical")


def matchers_from_json(data: dict | None) -> Matchers:
    data = data or {}
    return Matchers(
        check_ids=frozenset(str(i) for i in data.get("check_ids", ())),
        tags=frozenset(data.get("tags", ())),
        environment=data.get("environment", ""),
        whole_team=bool(data.get("whole_team", False)),
    )


def matchers_to_json(matchers: Matchers) -> dict:
    return {
        "check_ids": sorted(matchers.check_ids),
        "tags": sorted(matchers.tags),
        "environment": matchers.environment,
        "whole_team": matchers.whole_team,
    }


def _severities(text: str) -> frozenset[str]:
    return frozenset(text.split())


class EscalationPolicy(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="escalation_policies")
    name = models.CharField(max_length=100)
    # The policy of every check of the team that names none.
    is_default = models.BooleanField(default=False)
    # After the last step, run all steps again this many times.
    repeat = models.PositiveSmallIntegerField(default=0)
    # Once the repeats are used up: remind at this interval until acknowledged (NULL: never).
    reminder_interval = models.DurationField(null=True, blank=True)
    # An acknowledged incident still failing after this long is triggered again (NULL: never).
    ack_timeout = models.DurationField(null=True, blank=True)
    # Space-separated severities this policy handles; empty: all.
    severities = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_policy_name_per_team"),
            models.UniqueConstraint(
                fields=["team"], condition=Q(is_default=True), name="one_default_policy_per_team"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> PolicySnapshot:
        """The frozen copy an incident keeps (see policy.py)."""
        return PolicySnapshot(
            steps=tuple(step.snapshot() for step in self.steps.all()),
            repeat=self.repeat,
            ack_timeout=self.ack_timeout,
            reminder_interval=self.reminder_interval,
            severities=_severities(self.severities),
        )


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(default=0)
    # How long after this step fires the next one does, unless someone acknowledged.
    wait = models.DurationField(default=timedelta(minutes=15))
    # [{"kind": "user"|"channel"|"rotation"|"team", "id": int}, ...]
    targets = models.JSONField(default=list)
    severities = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"step {self.order + 1} of {self.policy}"

    def target_list(self) -> list[Target]:
        return [Target(TargetKind(t["kind"]), int(t["id"])) for t in self.targets]

    def snapshot(self) -> StepSnapshot:
        return StepSnapshot(
            wait=self.wait,
            targets=tuple(self.target_list()),
            severities=_severities(self.severities),
        )


class Rotation(models.Model):
    Cadence = models.TextChoices("Cadence", [(c.name, c.value) for c in Cadence])

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rotations")
    name = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="UTC")
    cadence = models.CharField(max_length=10, choices=Cadence.choices, default=Cadence.WEEKLY)
    handoff_time = models.TimeField()
    # The first shift begins at handoff_time on this local date.
    start_date = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_rotation_name_per_team"),
        ]

    def __str__(self) -> str:
        return self.name

    def spec(self) -> RotationSpec:
        return RotationSpec(
            members=tuple(m.user_id for m in self.members.all()),
            start_date=self.start_date,
            handoff_time=self.handoff_time,
            timezone=self.timezone,
            cadence=Cadence(self.cadence),
            overrides=tuple(
                Override(o.user_id, o.starts_at, o.ends_at)
                for o in self.overrides.order_by("created_at", "id")
            ),
        )


class RotationMember(models.Model):
    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.user} in {self.rotation}"


class RotationOverride(models.Model):
    """A swap or cover: `user` is on call from starts_at to ends_at, whatever the schedule."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]

    def __str__(self) -> str:
        return f"{self.user} covers {self.rotation}"


class SilenceQuerySet(models.QuerySet):
    def active_at(self, at):
        return self.filter(starts_at__lte=at, ends_at__gt=at, expired_at__isnull=True)

    def upcoming(self, at):
        return self.filter(starts_at__gt=at, expired_at__isnull=True)


class Silence(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="silences")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # {"check_ids": [...], "tags": [...], "environment": "", "whole_team": false}
    matchers = models.JSONField(default=dict)
    # NULL only for a silence made from a chat message's link (the comment names the channel).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(max_length=1000)
    created_at = models.DateTimeField()
    # Set when someone ends the silence before ends_at.
    expired_at = models.DateTimeField(null=True, blank=True)
    expired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the creator was told that it ends while its checks still fail (once per silence).
    expiry_reminded_at = models.DateTimeField(null=True, blank=True)

    objects = SilenceQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["team", "ends_at"], name="silence_team_ends")]

    def __str__(self) -> str:
        return f"silence #{self.id} until {self.ends_at:%Y-%m-%d %H:%M}"

    @property
    def effective_end(self):
        return min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at

    def spec(self) -> SilenceSpec:
        return SilenceSpec(self.starts_at, self.effective_end, matchers_from_json(self.matchers))


class MaintenanceWindow(models.Model):
    """A recurring silence: opens at each `cron` time in `timezone` for `duration`."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="maintenance_windows")
    name = models.CharField(max_length=100)
    cron = models.CharField(max_length=100)
    duration = models.DurationField()
    timezone = models.CharField(max_length=64, default="UTC")
    matchers = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(max_length=1000)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def spec(self) -> MaintenanceSpec:
        return MaintenanceSpec(
            cron=self.cron,
            timezone=self.timezone,
            duration=self.duration,
            matchers=matchers_from_json(self.matchers),
        )
