"""Creating and finding API keys.

A key looks like `tk_<8 characters>_<43 characters>`: the first part (with `tk_`) is the
prefix shown in lists, the whole string is the secret. Keys are matched by the SHA-256 of the
whole string, so the database never holds a usable key.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from apps.teams.models import Team

from .models import ApiKey

KEY_PREFIX = "tk_"
# Longer than any key we issue; anything longer is refused before it is hashed.
MAX_KEY_LENGTH = 100


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewKey:
    api_key: ApiKey
    secret: str  # the only time the whole key exists outside the client


@transaction.atomic
def create_api_key(*, team: Team, name: str, is_read_only: bool) -> NewKey:
    """Create a key for `team`. Returns the row and the key itself, which is not stored."""
    while True:
        prefix = KEY_PREFIX + secrets.token_hex(4)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        team=team,
        name=name,
        prefix=prefix,
        key_hash=hash_key(secret),
        is_read_only=is_read_only,
    )
    return NewKey(api_key=api_key, secret=secret)


def find_api_key(presented: str) -> ApiKey | None:
    """The live key matching `presented`, or None."""
    if not presented or len(presented) > MAX_KEY_LENGTH:
        return None
    return (
        ApiKey.objects.select_related("team")
        .filter(Q(revoked_at__isnull=True), key_hash=hash_key(presented))
        .first()
    )


def revoke_api_key(*, team_id: int, key_id: int, now: datetime) -> bool:
    """Revoke the team's key `key_id` from `now` on. False when it was already revoked; raises
    ApiKey.DoesNotExist for a key of another team or none. A repeat is harmless."""
    key = ApiKey.objects.get(id=key_id, team_id=team_id)
    return bool(ApiKey.objects.filter(id=key.id, revoked_at__isnull=True).update(revoked_at=now))
