from django.conf import settings

from .health import (
    MAX_DELIVERY_LAG,
    delivery_lag_seconds,
    recent_blind_episode,
    sweeper_lag_seconds,
)


def sweeper_banner(request):
    """Monitor the monitor: every signed-in page says so when the sweeper is late or when due
    notifications are not going out."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    lag = sweeper_lag_seconds()
    delivery_lag = delivery_lag_seconds()
    return {
        "sweeper_late": lag is None or lag > 3 * settings.SWEEP_INTERVAL,
        "sweeper_lag": lag,
        # Alerts decided but not sent: no worker takes the deliveries queue (or all are stuck).
        "deliveries_stuck": delivery_lag > MAX_DELIVERY_LAG.total_seconds(),
        "delivery_lag_minutes": int(delivery_lag // 60),
        # One system warning when Tocsin itself was blind and marked misses unknown.
        "blind_episode": recent_blind_episode(),
    }
