"""Many deliveries at once (issue 11): a run sends due deliveries concurrently, bounded by
DELIVERY_CONCURRENCY, reusing keep-alive connections, and a receiver that hangs holds one slot
while the others go out. Real receivers on local sockets; the run is the service the delivery
task calls."""

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse

from apps.clock import database_now
from apps.notifications.delivery import deliver_due
from apps.notifications.flush import flush_due_groups
from apps.notifications.models import Delivery, Notification
from tests.conftest import requires_postgres

from .conftest import fail_a_run, make_channel, tell, to_channel
from .receiver import HOLD, receiving

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)


def owe_webhooks(team, incident, urls, *, now, step=0) -> list[Delivery]:
    """One webhook channel per URL, all told about `incident`, flushed into one delivery
    each, in the order of `urls`."""
    channels = [
        make_channel(team, "webhook", name=f"hook-{step}-{n:03}", url=url)
        for n, url in enumerate(urls)
    ]
    tell(incident, *(to_channel(channel) for channel in channels), now=now, step=step)
    flush_due_groups(now=now)
    deliveries = list(Delivery.objects.filter(channel__in=channels).order_by("id"))
    assert [d.channel_id for d in deliveries] == [c.id for c in channels]
    return deliveries


@pytest.fixture
def incident(check, t0):
    return fail_a_run(check, t0)


def test_fifty_slow_answers_take_about_the_slowest_not_the_sum(
    receiver, team, incident, t0, settings
):
    settings.DELIVERY_CONCURRENCY = 16
    now = t0 + MINUTE
    # The same run against an instant receiver first: what 50 messages cost without waiting
    # (the database work, seconds on a loaded box), so that the bound below measures only
    # what the receiver's slowness adds.
    owe_webhooks(team, incident, [receiver.url(f"/quick-{n}") for n in range(50)], now=now)
    reverse("dashboard:incident-detail", args=[incident.id])  # imports every URL module once
    started = time.monotonic()
    assert str(deliver_due(now=now, jitter=0)) == "sent 50, retrying 0, failed 0"
    baseline = time.monotonic() - started

    receiver.delay = 0.5
    receiver.peak_busy = 0
    sequential = 50 * receiver.delay  # 25 s, one after another
    deliveries = owe_webhooks(
        team, incident, [receiver.url(f"/{n}") for n in range(50)], now=now, step=1
    )
    started = time.monotonic()
    result = deliver_due(now=now, jitter=0)
    elapsed = time.monotonic() - started

    assert str(result) == "sent 50, retrying 0, failed 0"
    # Four waves of 16 add about 2 s of waiting to the baseline; half the sum leaves room for
    # a loaded 2-core box and still fails any run that waits for them one after another.
    added = elapsed - baseline
    assert added < sequential / 2, f"waiting added {added:.1f} s ({baseline:.1f} s baseline)"
    # Concurrent, and never more at once than the setting allows.
    assert 1 < receiver.peak_busy <= 16
    slow = [r for r in receiver.requests if not r.path.startswith("/quick")]
    assert sorted(int(r.headers["X-Tocsin-Delivery"]) for r in slow) == sorted(
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


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_each_message_once(receiver, team, check, settings):
    """Runs in two workers share a burst: SKIP LOCKED gives them disjoint rows."""
    settings.DELIVERY_CONCURRENCY = 4
    receiver.delay = 0.1
    now = database_now()
    incident = fail_a_run(check, now - 2 * SECOND)
    deliveries = owe_webhooks(team, incident, [receiver.url(f"/{n}") for n in range(24)], now=now)
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(deliver_due(now=database_now(), jitter=0))
        finally:
            connection.close()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(timeout=120)

    ids = sorted(int(r.headers["X-Tocsin-Delivery"]) for r in receiver.requests)
    assert ids == sorted(d.id for d in deliveries)
    assert sum(len(result.outcomes) for result in results) == 24
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_run_that_stops_claiming_finishes_what_it_holds_and_says_more_may_be_due(
    receiver, team, incident, t0, settings
):
    """The delivery task gives its runs a claiming window (so a worker that also sweeps gets
    its turn) and wakes another run when one stopped with more due."""
    settings.DELIVERY_CONCURRENCY = 2
    now = t0 + MINUTE
    owe_webhooks(team, incident, [receiver.url(f"/{n}") for n in range(5)], now=now)
    first = deliver_due(now=now, jitter=0, claim_for=0)
    assert (len(first.outcomes), first.stopped_claiming) == (2, True)
    assert Delivery.objects.filter(status="pending").count() == 3
    rest = deliver_due(now=now, jitter=0, claim_for=None)
    assert (len(rest.outcomes), rest.stopped_claiming) == (3, False)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
