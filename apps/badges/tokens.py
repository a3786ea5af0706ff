"""Badge URLs: unguessable without a login, and stable, so that a README can embed them.

A badge token is a signed, non-expiring description of what the badge shows: one check (`{"c":
"<check's badge key>"}`: not its id, which is its ping URL), one tag of one team (`{"t": <team
id>, "g": "<tag>"}`) or every check of one team (`{"t": <team id>}`, Healthchecks' "*" badge).
`"s": 2` asks for the two-state variant of a team badge (late counts as up, as in Healthchecks'
plain badges); the tokens of three-state badges are unchanged from before the variant existed.
The HMAC (SECRET_KEY, with a salt used for nothing else) makes the URL unguessable and
untamperable; the payload is readable but holds only ids. Django's Signer without a timestamp
gives the same token on every call, so the URL shown on the check page never changes. Rotating
SECRET_KEY (with SECRET_KEY_FALLBACKS for a transition) invalidates every badge URL."""

import uuid
from dataclasses import dataclass

from django.core import signing

SALT = "tocsin.badges"


@dataclass(frozen=True)
class CheckBadgeClaim:
    badge_key: uuid.UUID


@dataclass(frozen=True)
class TagBadgeClaim:
    team_id: int
    tag: str | None  # None: every check of the team
    states: int = 3


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def make_check_badge_token(badge_key: uuid.UUID) -> str:
    return _signer().sign_object({"c": badge_key.hex}, compress=False)


def make_tag_badge_token(team_id: int, tag: str | None, *, states: int = 3) -> str:
    payload: dict = {"t": team_id}
    if tag is not None:
        payload["g"] = tag
    if states == 2:
        payload["s"] = 2
    return _signer().sign_object(payload, compress=False)


def read_badge_token(token: str) -> CheckBadgeClaim | TagBadgeClaim | None:
    """What the token shows, or None when it is tampered with or malformed."""
    try:
        payload = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError):
        # ValueError: base64 or JSON that does not decode (only reachable with a valid
        # signature over garbage, i.e. never from our own tokens; kept as a safety net).
        return None
    if not isinstance(payload, dict):
        return None
    if set(payload) == {"c"} and isinstance(payload["c"], str):
        try:
            return CheckBadgeClaim(uuid.UUID(hex=payload["c"]))
        except ValueError:
            return None
    if "t" in payload and set(payload) <= {"t", "g", "s"}:
        team_id, tag = payload["t"], payload.get("g")
        two_states = "s" in payload
        if (
            type(team_id) is int
            and (tag is None or isinstance(tag, str))
            and (not two_states or (type(payload["s"]) is int and payload["s"] == 2))
        ):
            return TagBadgeClaim(team_id, tag, 2 if two_states else 3)
    return None
