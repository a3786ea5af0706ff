from django.db import models

from apps.teams.models import Team


class ApiKey(models.Model):
    """A team's key for the REST API. Only a SHA-256 of the key is stored: the key itself is
    shown once, when it is created. The prefix is the key's first characters, kept in clear so
    that people can tell their keys apart in lists and logs without the secret part."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    # Hex SHA-256 of the whole key. A plain hash is enough because the key is 256 random bits,
    # not a password: there is nothing to brute-force, so no slow, salted hash is needed, and
    # the lookup stays one indexed equality.
    key_hash = models.CharField(max_length=64, unique=True)
    is_read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team", "name"]

    def __str__(self) -> str:
        access = "read-only" if self.is_read_only else "read-write"
        return f"{self.name} ({self.prefix}…, {access})"
