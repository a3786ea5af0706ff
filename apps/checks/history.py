"""A check's record over a period, read from its flips and runs: the check page's downtime
table and the status reports use these. Read-only."""

from datetime import datetime

from .downtime import Downtime, downtime_in
from .models import Check, Flip, Run


def check_downtime(*, check_id, start: datetime, end: datetime, now: datetime) -> Downtime:
    """Downtime of the check in [start, min(end, now)), from its flips (flip_check_time index:
    one row before the window, then the window's rows)."""
    flips = Flip.objects.filter(owner_id=check_id)
    before = flips.filter(happened_at__lt=start).order_by("-happened_at", "-id").first()
    inside = flips.filter(happened_at__gte=start, happened_at__lt=min(end, now))
    return downtime_in(
        inside.values_list("happened_at", "to_status"),
        status_before=before.to_status if before else Check.Status.NEW,
        start=start,
        end=end,
        now=now,
    )


def slowest_runs(*, check_id, start: datetime, end: datetime, limit: int = 3) -> list[Run]:
    """The longest finished runs that ended in [start, end), longest first."""
    return list(
        Run.objects.filter(
            owner_id=check_id, ended_at__gte=start, ended_at__lt=end, duration__isnull=False
        ).order_by("-duration", "-id")[:limit]
    )
