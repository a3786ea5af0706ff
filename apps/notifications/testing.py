"""The channel page's "send a test notification": a real delivery, sent now, one attempt."""

from datetime import datetime

from .delivery import deliver
from .models import Channel, Delivery


def send_test_notification(*, channel: Channel, now: datetime) -> Delivery:
    """Send a test message to `channel` through the same path as alerts (same renderer, same
    outbound guard and timeout), once: a failure is reported, not retried or escalated.
    Returns the delivery, with its outcome. The caller waits at most OUTBOUND_TIMEOUT."""
    delivery = Delivery.objects.create(
        team_id=channel.team_id,
        target=channel.target,
        channel=channel,
        address=channel.name,
        is_test=True,
        summary="Test notification",
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
    )
    deliver(delivery_id=delivery.id, now=now)
    delivery.refresh_from_db()
    return delivery
