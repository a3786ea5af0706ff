"""Rate limits on the account pages: log in, sign up and password reset, per client address
and per account (the username tried, or the email address given).

Counts live in Django's cache, which is Redis when REDIS_URL is set, so every web process
shares them. Each limit is a fixed window that opens with the first attempt: `attempts` are
allowed in `window`, and the next one is refused until the window closes. A refused attempt is
not carried out at all (no password is checked, no account created, no email sent).

Password reset counts every address given, known or not, so that being refused says nothing
about whether an account exists. Log in counts failures per username (a typo must not lock
anyone out for long, and a stranger cannot lock out a user by succeeding) and every attempt per
client address.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache

from . import addresses

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    attempts: int
    window: timedelta

    def describe_wait(self) -> str:
        minutes = round(self.window.total_seconds() / 60)
        return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"


LOGIN_PER_ADDRESS = Limit("login-address", 30, timedelta(minutes=15))
LOGIN_FAILURES_PER_ACCOUNT = Limit("login-account", 10, timedelta(minutes=15))
SIGNUP_PER_ADDRESS = Limit("signup-address", 10, timedelta(hours=1))
SIGNUP_PER_EMAIL = Limit("signup-email", 5, timedelta(hours=1))
RESET_PER_ADDRESS = Limit("reset-address", 10, timedelta(hours=1))
RESET_PER_EMAIL = Limit("reset-email", 3, timedelta(hours=1))


def client_address(request) -> str:
    """The client's address, taken from X-Forwarded-For only behind a trusted proxy
    (apps/teams/addresses.py)."""
    return addresses.client_address(request.META)


def _key(limit: Limit, ident: str) -> str:
    # Hashed: an email address or a hostile username never becomes part of a cache key as is.
    digest = hashlib.sha256(ident.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"account-throttle:{limit.name}:{digest[:40]}"


Counted = tuple[Limit, str]


def exceeded(*counted: Counted) -> Limit | None:
    """The first limit among `counted` (limit, who) already used up, or None. Reads only."""
    wanted = {_key(limit, who): limit for limit, who in counted if who}
    try:
        found = cache.get_many(list(wanted))
    except Exception:
        # The cache is a guard, not a dependency: with Redis down people can still log in.
        logger.warning("account throttle cache unavailable; attempt let through", exc_info=True)
        return None
    for key, limit in wanted.items():
        if found.get(key, 0) >= limit.attempts:
            return limit
    return None


def count(*counted: Counted) -> None:
    """Count one attempt against each of `counted`."""
    for limit, who in counted:
        if not who:
            continue
        key = _key(limit, who)
        timeout = int(limit.window.total_seconds())
        try:
            # add() opens the window without extending it; incr() is atomic in Redis.
            cache.add(key, 0, timeout=timeout)
            try:
                cache.incr(key)
            except ValueError:  # expired between the two calls
                cache.set(key, 1, timeout=timeout)
        except Exception:
            logger.warning("account throttle cache unavailable; attempt not counted", exc_info=True)
