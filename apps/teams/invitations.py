"""Signed, expiring links for team invitations.

The token names one Invitation row; the row, not the token, says whether the invitation can
still be used (accepted or revoked ones cannot), so a link works once and an owner can take it
back before it is used.
"""

from datetime import timedelta

from django.core import signing

SALT = "tocsin.teams.invitation"
INVITATION_MAX_AGE = timedelta(days=7)


class InvalidInvitation(Exception):
    """The link is altered, expired, used or revoked; the message says which, for the page."""


def make_invitation_token(invitation_id: int) -> str:
    return signing.dumps({"i": invitation_id}, salt=SALT, compress=False)


def read_invitation_token(token: str, *, max_age: timedelta = INVITATION_MAX_AGE) -> int:
    """The invitation id in `token`; raises InvalidInvitation."""
    if len(token) > 200:  # real tokens are ~60 characters; do not feed megabytes to the signer
        raise InvalidInvitation("This invitation link is not valid.")
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise InvalidInvitation("This invitation has expired; ask for a new one.") from None
    except signing.BadSignature:
        raise InvalidInvitation(
            "This invitation link is not valid: it may have been altered."
        ) from None
    try:
        return int(payload["i"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInvitation("This invitation link is not valid.") from None
