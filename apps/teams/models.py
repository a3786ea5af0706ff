import secrets

from django.conf import settings
from django.db import models

from .report_periods import DEFAULT_FREQUENCY, Frequency


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


class UserSettings(models.Model):
    """A person's own preferences, whatever team they look at. A user without a row has the
    defaults: times in the browser's zone on pages, in UTC in emails; a monthly report."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="tocsin_settings",
    )
    # An IANA zone name ("Europe/Riga"); blank: the browser's zone (emails: UTC).
    display_timezone = models.CharField(max_length=64, blank=True)
    # How often the status report comes (apps/notifications/status_reports.py), in the display
    # zone's calendar (UTC when blank).
    Frequency = models.TextChoices("Frequency", [(f.name, f.value) for f in Frequency])
    report_frequency = models.CharField(
        max_length=10, choices=Frequency.choices, default=DEFAULT_FREQUENCY.value
    )

    class Meta:
        verbose_name_plural = "user settings"

    def __str__(self) -> str:
        return f"settings of {self.user_id}"
