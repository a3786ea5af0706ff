"""Health of Tocsin itself: the database, the broker, the sweeper's lag and the deliveries'."""

from datetime import timedelta

from apps.checks.models import Flip, SweepRun
from apps.checks.quarantine import recent_evaluation_failures
from apps.clock import database_now
from apps.notifications.models import Delivery


def sweeper_lag_seconds() -> float | None:
    """Seconds since the last sweep started, by the database clock; None if none ever ran."""
    last = SweepRun.objects.order_by("-started_at").values_list("started_at", flat=True).first()
    if last is None:
        return None
    return max(0.0, (database_now() - last).total_seconds())


# A due delivery older than this means no worker consumes the deliveries queue (or every slot
# is stuck): alerts are decided but nobody is told. Generous, because a burst to a slow
# receiver legitimately queues for a few OUTBOUND_TIMEOUTs.
MAX_DELIVERY_LAG = timedelta(minutes=10)


def delivery_lag_seconds() -> float:
    """Seconds the oldest due, unsent delivery has waited (0 when none waits). One row read
    through the partial index the retry beat uses."""
    now = database_now()
    oldest = (
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


def broker_ok(timeout: float = 2.0) -> tuple[bool, str]:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}".strip()[:200]
    return True, "ok"


def recent_blind_episode(hours: int = 24) -> dict | None:
    """The latest time Tocsin itself was blind (sweeper stopped or pings stopped arriving)
    within `hours`, for the operator's one system warning; None if there was none."""
    since = database_now() - timedelta(hours=hours)
    sweep = (
        SweepRun.objects.filter(started_at__gte=since, blind_since__isnull=False)
        .order_by("-started_at")
        .first()
    )
    if sweep is None:
        return None
    unknown = Flip.objects.filter(
        to_status="unknown", happened_at__gte=sweep.blind_since, happened_at__lte=sweep.started_at
    ).count()
    return {
        "since": sweep.blind_since,
        "until": sweep.started_at,
        "cause": sweep.blind_cause,
        "checks_marked_unknown": unknown,
    }


def evaluation_failures() -> dict:
    """Checks whose evaluation raised lately (apps/checks/quarantine.py): each is a bug or
    damaged data that the operator should hear of, even though the check goes on being judged."""
    return recent_evaluation_failures(database_now())
