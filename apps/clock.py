"""One clock for every node: the database's.

Web nodes that receive pings and workers that sweep may run on machines whose clocks disagree.
On PostgreSQL, pings are stamped with `now()` inside the UPDATE and the sweeper reads `now()`
once per run, so node clocks never decide anything. SQLite is the single-host embedded mode:
every process runs on one machine and shares its clock, which is then the one clock.
"""

from datetime import UTC, datetime

from django.db import DatabaseError, connection
from django.utils import timezone


def database_now() -> datetime:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT now()")
            (now,) = cursor.fetchone()
        return now.astimezone(UTC)
    return timezone.now()


def database_ok() -> tuple[bool, str]:
    """Whether the database answers, and why not (for /healthz and Healthchecks' status)."""
    try:
        database_now()
    except DatabaseError as exc:
        return False, f"{type(exc).__name__}: {exc}".strip()[:200]
    return True, "ok"
