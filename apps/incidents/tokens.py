"""Signed, expiring, single-use tokens for the one-click links in alerts.

A token is bound to one incident, one action and one recipient: a user (an email to that
person) or a channel (a chat message that anyone in the channel may click). It carries a random
nonce that is recorded when the action is carried out, so a replayed link changes nothing.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing

SALT = "tocsin.incidents.action"
# Silence actions name their length; SILENCE_ACTIONS maps them to it.
SILENCE_ACTIONS = {
    "silence_1h": timedelta(hours=1),
    "silence_4h": timedelta(hours=4),
    "silence_24h": timedelta(hours=24),
}
ACTIONS = ("acknowledge", "resolve", *SILENCE_ACTIONS, "escalate")
ACTION_LABELS = {
    "acknowledge": "Acknowledge",
    "resolve": "Resolve",
    "silence_1h": "Silence this check for 1 hour",
    "silence_4h": "Silence this check for 4 hours",
    "silence_24h": "Silence this check for 24 hours",
    "escalate": "Not me — escalate now",
}


class InvalidToken(Exception):
    """The token is tampered with, malformed or expired; the message says which, for the page."""


@dataclass(frozen=True)
class ActionClaim:
    incident_id: int
    action: str
    nonce: str
    user_id: int | None = None
    channel_id: int | None = None

    @property
    def label(self) -> str:
        return ACTION_LABELS[self.action]


def make_action_token(
    *, incident_id: int, action: str, user_id: int | None = None, channel_id: int | None = None
) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if (user_id is None) == (channel_id is None):
        raise ValueError("a token is for exactly one user or one channel")
    payload = {"i": incident_id, "a": action, "n": secrets.token_urlsafe(12)}
    if user_id is not None:
        payload["u"] = user_id
    else:
        payload["c"] = channel_id
    return signing.dumps(payload, salt=SALT, compress=False)


def _optional_id(payload: dict, key: str) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(key)
    return int(value)


def read_action_token(token: str, *, max_age: timedelta | None = None) -> ActionClaim:
    age = settings.ACTION_TOKEN_MAX_AGE if max_age is None else max_age
    try:
        payload = signing.loads(token, salt=SALT, max_age=age)
    except signing.SignatureExpired:
        raise InvalidToken("This link has expired.") from None
    except signing.BadSignature:
        raise InvalidToken("This link is not valid: it may have been altered.") from None
    try:
        claim = ActionClaim(
            incident_id=int(payload["i"]),
            action=str(payload["a"]),
            nonce=str(payload["n"]),
            user_id=_optional_id(payload, "u"),
            channel_id=_optional_id(payload, "c"),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidToken("This link is not valid.") from None
    if claim.action not in ACTIONS or (claim.user_id is None) == (claim.channel_id is None):
        raise InvalidToken("This link is not valid.")
    return claim
