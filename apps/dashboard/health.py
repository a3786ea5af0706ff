"""Health of Tocsin itself: the database, the broker and the sweeper's lag."""

from django.db import DatabaseError

from apps.checks.clock import database_now
from apps.checks.models import SweepRun


def sweeper_lag_seconds() -> float | None:
    """Seconds since the last sweep started, by the database clock; None if none ever ran."""
    last = SweepRun.objects.order_by("-started_at").values_list("started_at", flat=True).first()
    if last is None:
        return None
    return max(0.0, (database_now() - last).total_seconds())


def database_ok() -> tuple[bool, str]:
    try:
        database_now()
    except DatabaseError as exc:
        return False, f"{type(exc).__name__}: {exc}".strip()[:200]
    return True, "ok"


def broker_ok(timeout: float = 2.0) -> tuple[bool, str]:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}".strip()[:200]
    return True, "ok"
