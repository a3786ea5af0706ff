"""Many deliveries at once (issue 11): a run sends due deliveries concurrently, bounded by
DELIVERY_CONCURRENCY, reusing keep-alive connections, and a receiver that hangs holds one slot
while the others go out. Real receivers on local sockets; the run is the service the delivery
task calls."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from apps.notifications.delivery import deliver_due
from apps.notifications.flush import flush_due_groups
from apps.notifications.models import Delivery, Notification

from .conftest import fail_a_run, make_channel, tell, to_channel
from .receiver import HOLD, receiving

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)


def owe_webhooks(team, incident, urls, *, now) -> list[Delivery]:
    """One webhook channel per URL, all told about `incident`, flushed into one delivery
    each, in the order of `urls`."""
    channels = [
        make_channel(team, "webhook", name=f"hook-{n:03}", url=url) for n, url in enumerate(urls)
    ]
    tell(incident, *(to_channel(channel) for channel in channels), now=now)
    flush_due_groups(now=now)
    deliveries = list(Delivery.objects.filter(channel__isnull=False).order_by("id"))
    assert [d.channel_id for d in deliveries] == [c.id for c in channels]
    return deliveries


@pytest.fixture
def incident(check, t0):
    return fail_a_run(check, t0)


def test_fifty_slow_answers_take_about_the_slowest_not_the_sum(
    receiver, team, incident, t0, settings
):
    settings.DELIVERY_CONCURRENCY = 16
    receiver.delay = 0.5
    sequential = 50 * receiver.delay  # 25 s, one after another
    now = t0 + MINUTE
    deliveries = owe_webhooks(team, incident, [receiver.url(f"/{n}") for n in range(50)], now=now)
    # The first reverse() of the process imports every URL module (seconds on a busy box):
    # not part of what is measured.
    reverse("dashboard:incident-detail", args=[incident.id])

    started = time.monotonic()
    result = deliver_due(now=now, jitter=0)
    elapsed = time.monotonic() - started

    assert str(result) == "sent 50, retrying 0, failed 0"
    # Four waves of 16 take about 2 s of waiting, plus the database work of 50 messages
    # (a fraction of a second on a quiet box, several seconds on a loaded one). Half the sum
    # leaves room for a loaded 2-core box and still fails any sequential run.
    assert elapsed < sequential / 2, f"50 deliveries took {elapsed:.1f} s"
    # Concurrent, and never more at once than the setting allows.
    assert 1 < receiver.peak_busy <= 16
    assert sorted(int(r.headers["X-Tocsin-Delivery"]) for r in receiver.requests) == sorted(
        d.id for d in deliveries
    )
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_a_receiver_that_hangs_does_not_delay_the_others(receiver, team, incident, t0, settings):
    settings.DELIVERY_CONCURRENCY = 4
    settings.OUTBOUND_TIMEOUT = 60.0
    now = t0 + MINUTE
    with receiving() as stuck:
        # The stuck receiver answers only once every other message has arrived (or after 30 s,
        # which fails the test): if the others waited behind it, it would never be released.
        stuck.script = [HOLD]
        stuck.hold_until = lambda: len(receiver.requests) == 49
        first, *_ = owe_webhooks(
            team,
            incident,
            [stuck.url("/stuck")] + [receiver.url(f"/{n}") for n in range(49)],
            now=now,
        )
        result = deliver_due(now=now, jitter=0)

    assert stuck.held_released_by == ["condition"]
    assert str(result) == "sent 50, retrying 0, failed 0"
    assert len(receiver.requests) == 49
    # It was the oldest, so the first claimed; the 49 others went out while it was held, and
    # then it was sent too.
    assert Delivery.objects.get(id=first.id).status == "sent"


def test_one_run_reuses_keep_alive_connections_per_host(team, incident, t0, settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    settings.DELIVERY_CONCURRENCY = 4
    now = t0 + MINUTE
    with receiving(keep_alive=True) as receiver:
        owe_webhooks(team, incident, [receiver.url(f"/{n}") for n in range(40)], now=now)
        result = deliver_due(now=now, jitter=0)
    assert str(result) == "sent 40, retrying 0, failed 0"
    # 40 requests over at most one connection per thread.
    connections = {request.peer for request in receiver.requests}
    assert len(receiver.requests) == 40
    assert 1 <= len(connections) <= 4


def test_failures_in_a_run_are_retried_with_backoff_and_reported(
    receiver, team, owner, incident, t0, settings
):
    """The outbox's promises hold for a concurrent run: a retryable failure is persisted with
    its next attempt, a permanent one fails at once and is reported, the rest are sent."""
    settings.DELIVERY_CONCURRENCY = 8
    settings.NOTIFICATION_RETRY_BASE = 10 * SECOND
    now = t0 + MINUTE
    deliveries = owe_webhooks(
        team,
        incident,
        [receiver.url("/ok-1"), receiver.url("/busy"), receiver.url("/gone"), receiver.url("/ok")],
        now=now,
    )
    receiver.answers_by_path = {"/busy": 503, "/gone": 410}
    result = deliver_due(now=now, jitter=0)

    ok_1, busy, gone, ok = (Delivery.objects.get(id=d.id) for d in deliveries)
    assert (ok_1.status, ok.status) == ("sent", "sent")
    assert (busy.status, busy.attempts, busy.next_attempt_at) == ("pending", 1, now + 5 * SECOND)
    assert (gone.status, gone.response_status) == ("failed", 410)
    assert result.outcomes[busy.id].endswith(f"retry at {(now + 5 * SECOND).isoformat()}")
    assert result.outcomes[ok.id] == f"delivery {ok.id}: sent"
    (report,) = [m for m in mail.outbox if "are failing" in m.subject]
    assert "HTTP 410" in report.body

    # Not due yet: a run now sends nothing; when due, the retry goes out with the same id.
    assert deliver_due(now=now + 4 * SECOND).outcomes == {}
    receiver.answers_by_path = {}
    assert deliver_due(now=now + 5 * SECOND).outcomes == {busy.id: f"delivery {busy.id}: sent"}
    busy_requests = [r for r in receiver.requests if r.path == "/busy"]
    assert [r.headers["X-Tocsin-Delivery"] for r in busy_requests] == [str(busy.id)] * 2
