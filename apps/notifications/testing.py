"""The channel page's and the API's "send a test notification": a real delivery, sent now, one
attempt, at most one per channel every TEST_INTERVAL."""

from datetime import datetime, timedelta

from django.db import transaction

from .delivery import deliver
from .models import Channel, Delivery

# A test waits up to OUTBOUND_TIMEOUT on the receiver: without a pause between tests, a script
# (or a held-down button) could make Tocsin hammer a third party's endpoint.
TEST_INTERVAL = timedelta(seconds=5)


class TestTooSoon(Exception):
    """The channel had a test less than TEST_INTERVAL ago; `retry_after` says how long to
    wait."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, retry_after: timedelta):
        super().__init__(f"A test was sent less than {TEST_INTERVAL.seconds} s ago.")
        self.retry_after = retry_after


def send_test_notification(*, channel: Channel, now: datetime) -> Delivery:
    """Send a test message to `channel` through the same path as alerts (same renderer per
    kind, same outbound guard and timeout), once: a failure is reported, not retried or
    escalated. Raises TestTooSoon, writing nothing, when the channel had a test within
    TEST_INTERVAL before `now`. Returns the delivery, with its outcome. The caller waits at
    most OUTBOUND_TIMEOUT."""
    with transaction.atomic():
        # The channel's row lock makes two simultaneous requests take turns, so that only the
        # first of them passes the interval check.
        Channel.objects.select_for_update().filter(id=channel.id).first()
        last = (
            Delivery.objects.filter(channel_id=channel.id, is_test=True)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if last is not None and now - last < TEST_INTERVAL:
            raise TestTooSoon(TEST_INTERVAL - (now - last))
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
