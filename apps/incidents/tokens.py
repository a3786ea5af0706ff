"""Signed, expiring, single-use tokens for the one-click links in alert emails.

A token is bound to one incident, one action and one recipient; it carries a random nonce that
is recorded when the action is carried out, so a replayed link changes nothing.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing

SALT = "tocsin.incidents.action"
ACTIONS = ("acknowledge", "resolve")


class InvalidToken(Exception):
    """The token is tampered with, malformed or expired; the message says which, for the page."""


@dataclass(frozen=True)
class ActionClaim:
    incident_id: int
    action: str
    user_id: int
    nonce: str


def make_action_token(*, incident_id: int, action: str, user_id: int) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    payload = {"i": incident_id, "a": action, "u": user_id, "n": secrets.token_urlsafe(12)}
    return signing.dumps(payload, salt=SALT, compress=False)


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
            user_id=int(payload["u"]),
            nonce=str(payload["n"]),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("This link is not valid.") from None
    if claim.action not in ACTIONS:
        raise InvalidToken("This link is not valid.")
    return claim
