from django.conf import settings

from .health import recent_blind_episode, sweeper_lag_seconds


def sweeper_banner(request):
    """Monitor the monitor: every signed-in page says so when the sweeper is late."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    lag = sweeper_lag_seconds()
    return {
        "sweeper_late": lag is None or lag > 3 * settings.SWEEP_INTERVAL,
        "sweeper_lag": lag,
        # One system warning when Tocsin itself was blind and marked misses unknown.
        "blind_episode": recent_blind_episode(),
    }
