import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models

from apps.checks.schedule import ScheduleKind


def new_ping_key() -> str:
    # 22 URL-safe characters, the shape Healthchecks uses, so it never parses as a UUID.
    return secrets.token_urlsafe(16)


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    ping_key = models.CharField(max_length=64, unique=True, default=new_ping_key)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="unique_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"

    # Roles form a ladder: each one may do what the ones below it may.
    _RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}

    def has_role(self, minimum: "Membership.Role") -> bool:
        return self._RANK[Membership.Role(self.role)] >= self._RANK[minimum]


class Invitation(models.Model):
    """An email invitation to join a team with a role. The email carries a signed, expiring
    token naming this row; accepting stamps `accepted_at`, so a link works once."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.email} to {self.team} as {self.role}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


# A team that has not chosen its own limit: generous for real use, yet a runaway loop of
# pings with ever-new slugs stops here instead of filling the database.
DEFAULT_MAX_CHECKS = 500


class CheckDefaults(models.Model):
    """What a check created by auto-provisioning (a ping to /ping/<ping key>/<slug>?create=1
    for an unknown slug) starts with, and how many checks the team may reach that way. A team
    without a row uses the field defaults, which match a new Check's. Notifications go through
    the escalation policy (a check has no channels of its own)."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, primary_key=True, related_name="check_defaults"
    )
    schedule_kind = models.CharField(
        max_length=12,
        choices=[(k.value, k.value) for k in ScheduleKind],
        default=ScheduleKind.PERIOD.value,
    )
    period = models.DurationField(default=timedelta(days=1))
    schedule_expression = models.CharField(max_length=200, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    grace = models.DurationField(default=timedelta(hours=1))
    tags = models.CharField(max_length=500, blank=True, help_text="Space-separated.")
    escalation_policy = models.ForeignKey(
        "escalation.EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Auto-provisioning creates no check once the team has this many (however they were
    # made); 0 turns auto-provisioning off.
    max_checks = models.PositiveIntegerField(default=DEFAULT_MAX_CHECKS)
    # A refused ping cannot be stored (a Ping needs its check), so it is counted here and the
    # page shows the last one: the team sees what it missed instead of nothing.
    refused_pings = models.PositiveIntegerField(default=0)
    last_refused_slug = models.CharField(max_length=100, blank=True)
    last_refused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "check defaults"

    def __str__(self) -> str:
        return f"check defaults of {self.team_id}"

    def check_settings(self) -> dict:
        """The Check fields a provisioned check takes from these defaults."""
        return {
            "schedule_kind": self.schedule_kind,
            "period": self.period,
            "schedule_expression": self.schedule_expression,
            "timezone": self.timezone,
            "grace": self.grace,
            "tags": self.tags,
            "escalation_policy_id": self.escalation_policy_id,
        }


class UserSettings(models.Model):
    """A person's own preferences, whatever team they look at. A user without a row has the
    defaults: times in the browser's zone on pages, in UTC in emails."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="tocsin_settings",
    )
    # An IANA zone name ("Europe/Riga"); blank: the browser's zone (emails: UTC).
    display_timezone = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "user settings"

    def __str__(self) -> str:
        return f"settings of {self.user_id}"
