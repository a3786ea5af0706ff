from django.conf import settings

from .health import sweeper_lag_seconds


def sweeper_banner(request):
    """Monitor the monitor: every signed-in page says so when the sweeper is late."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    lag = sweeper_lag_seconds()
    return {"sweeper_late": lag is None or lag > 3 * settings.SWEEP_INTERVAL, "sweeper_lag": lag}
