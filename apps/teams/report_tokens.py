"""Signed, expiring unsubscribe links for status reports: the token names the user and is
signed with SECRET_KEY under its own salt, so it cannot be turned into another user's link or
into any other kind of token. It stops working after UNSUBSCRIBE_MAX_AGE (a few reports' time),
after which the account page still turns reports off."""

from datetime import timedelta

from django.core import signing

SALT = "tocsin.teams.report-unsubscribe"
UNSUBSCRIBE_MAX_AGE = timedelta(days=90)


class InvalidUnsubscribeToken(Exception):
    """Tampered with, malformed or expired; the message says which, for the page."""


def make_unsubscribe_token(*, user_id: int) -> str:
    return signing.dumps({"u": user_id}, salt=SALT, compress=False)


def read_unsubscribe_token(token: str, *, max_age: timedelta = UNSUBSCRIBE_MAX_AGE) -> int:
    """The user id the token names."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise InvalidUnsubscribeToken(
            "This link has expired: turn reports off on your account page instead."
        ) from None
    except signing.BadSignature:
        raise InvalidUnsubscribeToken("This link is not valid: it may have been altered.") from None
    user_id = payload.get("u") if isinstance(payload, dict) else None
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise InvalidUnsubscribeToken("This link is not valid.")
    return user_id
