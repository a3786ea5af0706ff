"""Sending deliveries, many at once. Called by the delivery tasks; safe to run twice, and in
several workers at once.

A run claims due deliveries (pending and due -> sending, SKIP LOCKED, so concurrent runs take
disjoint rows and two workers never send one attempt twice), builds their messages, and sends
up to DELIVERY_CONCURRENCY of them at a time on a thread pool that shares keep-alive
connections per host. As slots free up it claims more, so a receiver that hangs holds one slot
for at most OUTBOUND_TIMEOUT while the others keep flowing. The threads only touch the network:
the database (claims, messages, outcomes) stays in the calling thread.

A claimed delivery holds a lease: its `updated_at`, renewed by the run every third of
OUTBOX_STALE_AFTER while it is in flight. A run that dies (its worker killed) stops renewing;
once the lease lapses the retry beat puts the delivery back to pending and it is sent again with
the same delivery id (at-least-once: a receiver may see it twice, never not at all).

An outcome is recorded in one shape (_record): a success marks the delivery sent; a failure that
may pass later puts it back to pending with `next_attempt_at` pushed out (exponential backoff
with jitter), so a retry survives the loss of any worker or task; a permanent failure, or the
last attempt, marks it failed: shown on the channel's page and the incidents' timelines, and
reported to the team by email (once per target per period).
"""

import logging
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q

from apps.bulk import bound_cursor, insert_many
from apps.incidents.models import IncidentEvent

from .channels import DeliveryError, SendOutcome, email
from .channels.registry import SENDERS
from .flush import flush_due_groups
from .grouping import retry_after_delay, retry_delay
from .message import Message, build_message, notification_rows
from .models import Delivery, Notification
from .outbound import ConnectionPool
from .reports import report_failure

logger = logging.getLogger(__name__)
Status = Delivery.Status
# Claims the ids of up to n due deliveries as of a moment (marks them sending).
Claimer = Callable[[datetime, int], list[int]]


# The delivery task's runs stop claiming after this many seconds (and finish what they have in
# flight, within OUTBOUND_TIMEOUT): a worker that also sweeps (the embedded setup runs one task
# at a time) gets its turn within about one sweep interval, and the task wakes another run for
# what is left.
CLAIM_FOR_SECONDS = 5.0


@dataclass
class RunResult:
    """What one run did; `outcomes` maps each attempted delivery to its summary line.
    `stopped_claiming` says that the run ran out of time with deliveries possibly still due."""

    outcomes: dict[int, str] = field(default_factory=dict)
    stopped_claiming: bool = False

    def count(self, word: str) -> int:
        return sum(word in summary for summary in self.outcomes.values())

    def __str__(self) -> str:
        return (
            f"sent {self.count(': sent')}, retrying {self.count('retry at')}, "
            f"failed {self.count('failed for good')}"
        )


def _is_due(now: datetime) -> Q:
    """A first attempt is always due (the flush that made the delivery may have run with a
    `now` ahead of this worker's clock); a retry waits for its next_attempt_at."""
    return Q(attempts=0) | Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def _mark_sending(delivery_ids: list[int], now: datetime) -> None:
    # The incident page and the API show the state per notification.
    Notification.objects.filter(delivery_id__in=delivery_ids).update(
        status=Notification.DeliveryStatus.SENDING, attempts=F("attempts") + 1, updated_at=now
    )


def claim(delivery_id: int, now: datetime) -> bool:
    """Compare-and-set one delivery pending (and due) -> sending; only one worker wins an
    attempt."""
    with transaction.atomic():
        claimed = (
            Delivery.objects.filter(id=delivery_id, status=Status.PENDING)
            .filter(_is_due(now))
            .update(status=Status.SENDING, attempts=F("attempts") + 1, updated_at=now)
        )
        if claimed:
            _mark_sending([delivery_id], now)
    return bool(claimed)


def claim_due(*, now: datetime, limit: int) -> list[int]:
    """Claim up to `limit` due deliveries, oldest due first: pending -> sending, one more
    attempt, lease from `now`. Rows another run has locked are skipped (PostgreSQL), so
    concurrent runs never claim one row twice; on SQLite the write transaction is exclusive."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING)
            .filter(_is_due(now))
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            Delivery.objects.filter(id__in=ids).update(
                status=Status.SENDING, attempts=F("attempts") + 1, updated_at=now
            )
            _mark_sending(ids, now)
    return ids


def renew_leases(delivery_ids: list[int], *, now: datetime) -> int:
    """Extend the lease of deliveries this run is still sending (see the module docstring)."""
    return Delivery.objects.filter(id__in=delivery_ids, status=Status.SENDING).update(
        updated_at=now
    )


def release_lapsed_leases(*, now: datetime) -> int:
    """Put deliveries whose lease lapsed (sending, not renewed for OUTBOX_STALE_AFTER: their
    worker died mid-send) back to pending, due now. Their message may have gone out already,
    so it may go out twice, with the same delivery id, which beats never."""
    return Delivery.objects.filter(
        status=Status.SENDING, updated_at__lt=now - settings.OUTBOX_STALE_AFTER
    ).update(status=Status.PENDING, next_attempt_at=now, updated_at=now)


def prepare_due_deliveries(*, now: datetime) -> int:
    """The retry beat's part: release lapsed leases, then count the deliveries that are due."""
    release_lapsed_leases(now=now)
    return Delivery.objects.filter(status=Status.PENDING).filter(_is_due(now)).count()


def due_delivery_ids(*, now: datetime, limit: int = 500) -> list[int]:
    """Release lapsed leases, then list the deliveries that are due (pending, next attempt
    due), oldest first."""
    release_lapsed_leases(now=now)
    return list(
        Delivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


def send_message(
    message: Message, delivery: Delivery, *, now: datetime, client: ConnectionPool | None = None
) -> SendOutcome:
    """Hand the message to the target's kind. Touches no database (it runs on the run's
    threads). Raises DeliveryError."""
    if delivery.target.startswith("user:"):
        return email.send(message, address=delivery.address)
    channel = delivery.channel
    if channel is None:
        raise DeliveryError("the channel was deleted", permanent=True)
    if not channel.is_enabled and not delivery.is_test:
        raise DeliveryError("the channel is disabled", permanent=True)
    sender = SENDERS[channel.kind]
    return sender.send(message, channel=channel, delivery=delivery, now=now, client=client)


def deliver_due(
    *,
    now: datetime,
    concurrency: int | None = None,
    jitter: float | None = None,
    claim_for: float | None = None,
) -> RunResult:
    """Send every delivery that is due, DELIVERY_CONCURRENCY (or `concurrency`) at a time,
    claiming more as slots free up, until none is due and none is in flight (or, once
    `claim_for` seconds have passed, finishing what is in flight; `stopped_claiming` then says
    whether more may be due). Writes
    each attempt's outcome as it ends; safe to run twice and in several workers at once. `now`
    is the run's start; later claims and lease renewals add the time elapsed since. `jitter`
    (0..1) is the random part of the retry backoff; tests pass it, production draws it."""
    return _run(
        lambda moment, n: claim_due(now=moment, limit=n),
        now=now,
        concurrency=concurrency or settings.DELIVERY_CONCURRENCY,
        jitter=jitter,
        claim_for=claim_for,
    )


def deliver(*, delivery_id: int, now: datetime, jitter: float | None = None) -> str:
    """Make one attempt at one delivery, if it is pending and due. Returns a short summary:
    "sent", "retry at ...", "failed for good" or "nothing to do"."""
    asked = []

    def claim_it_once(moment: datetime, n: int) -> list[int]:
        if asked:
            return []
        asked.append(delivery_id)
        return [delivery_id] if claim(delivery_id, moment) else []

    result = _run(claim_it_once, now=now, concurrency=1, jitter=jitter, claim_for=None)
    return result.outcomes.get(delivery_id, f"delivery {delivery_id}: nothing to do")


def _run(
    claim_batch: Claimer, *, now: datetime, concurrency: int, jitter, claim_for: float | None
) -> RunResult:
    started = time.monotonic()

    has_claimed: list[bool] = []  # set by the first claim's reading of the clock

    def clock() -> datetime:
        # The first claim is as of `now` exactly; later claims and renewals add the time
        # elapsed since.
        if not has_claimed:
            has_claimed.append(True)
            return now
        return now + timedelta(seconds=time.monotonic() - started)

    renew_every = settings.OUTBOX_STALE_AFTER.total_seconds() / 3
    result = RunResult()
    in_flight: dict[Future, tuple[Delivery, datetime]] = {}
    renewed_at = time.monotonic()
    maybe_more = True  # whether the last claim took all it asked for
    with (
        ConnectionPool() as client,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="deliver") as threads,
    ):
        while True:
            claimed = []
            # Claim when a quarter of the slots are free (or all are): a claim per freed slot
            # would cost a transaction per message.
            free = concurrency - len(in_flight)
            if has_claimed and claim_for is not None and time.monotonic() - started >= claim_for:
                result.stopped_claiming = maybe_more
            elif free >= max(1, concurrency // 4) or not in_flight:
                moment = clock()
                claimed = claim_batch(moment, free)
                maybe_more = len(claimed) == free
                failed_early = []
                for delivery, ready in _prepare(claimed):
                    if isinstance(ready, DeliveryError):
                        failed_early.append((delivery, ready, moment))
                    else:
                        future = threads.submit(_send, ready, delivery, moment, client)
                        in_flight[future] = (delivery, moment)
                result.outcomes.update(_settle_all(failed_early, jitter=jitter))
            if not in_flight:
                if claimed:
                    continue  # all of them settled at once: there may be more due
                break
            done, _ = wait(in_flight, timeout=renew_every, return_when=FIRST_COMPLETED)
            finished = [(*in_flight.pop(future), future.result()) for future in done]
            result.outcomes.update(
                _settle_all(
                    [(delivery, outcome, moment) for delivery, moment, outcome in finished],
                    jitter=jitter,
                )
            )
            if in_flight and time.monotonic() - renewed_at >= renew_every:
                renew_leases([delivery.id for delivery, _ in in_flight.values()], now=clock())
                renewed_at = time.monotonic()
    return result


def _prepare(delivery_ids: list[int]) -> Iterator[tuple[Delivery, Message | DeliveryError]]:
    """Load the claimed deliveries (after the claim: `attempts` counts this attempt) and build
    their messages."""
    if not delivery_ids:
        return
    rows = (
        Delivery.objects.select_related("channel", "team")
        .filter(id__in=delivery_ids)
        .order_by("next_attempt_at", "id")
    )
    notifications = notification_rows(delivery_ids)
    for delivery in rows:
        try:
            yield delivery, build_message(delivery, notifications[delivery.id])
        except Exception as exc:
            # A bug must not leave the delivery in `sending` until its lease lapses: it is
            # retried like a transient failure, and logged.
            logger.exception("delivery %s: building its message raised", delivery.id)
            yield delivery, DeliveryError(f"{type(exc).__name__}: {exc}")


def _send(
    message: Message, delivery: Delivery, now: datetime, client
) -> SendOutcome | DeliveryError:
    """On a run's thread: the network part of an attempt. Returns the outcome or the error."""
    try:
        return send_message(message, delivery, now=now, client=client)
    except DeliveryError as exc:
        return exc
    except Exception as exc:
        # An unexpected library error is retried like a transient failure, and logged.
        logger.exception("delivery %s raised", delivery.id)
        return DeliveryError(f"{type(exc).__name__}: {exc}")


def _settle_all(settled: list[tuple[Delivery, SendOutcome | DeliveryError, datetime]], *, jitter):
    """Record the outcomes of attempts that ended together, in one transaction; then report
    the final failures (after the commit: a report's own SMTP exchange must not hold the
    deliveries' transaction open). Returns {delivery id: summary line}."""
    if not settled:
        return {}
    decided = [
        _settle(delivery, outcome, now=now, jitter=jitter) for delivery, outcome, now in settled
    ]
    with transaction.atomic():
        written = _record_all(decided)
    summaries, reports = {}, []
    for settlement in decided:
        recorded = settlement.delivery.id in written
        summaries[settlement.delivery.id] = _summary(
            settlement.delivery, settlement.summary if recorded else None
        )
        if recorded and settlement.report:
            reports.append((settlement.delivery, settlement.report, settlement.now))
    for delivery, error, now in reports:
        report_failure(delivery, error=error, now=now)
    return summaries


@dataclass
class Settlement:
    """What one attempt's outcome writes: the delivery's new status and fields (mirrored onto
    its notifications), the timeline entry of a final outcome, the summary line, and the error
    to report to the team when it failed for good."""

    delivery: Delivery
    now: datetime
    status: str
    summary: str
    timeline: str | None = None
    report: str | None = None
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    last_error: str = ""
    response_status: int | None = None


def _settle(delivery: Delivery, outcome: SendOutcome | DeliveryError, *, now, jitter) -> Settlement:
    """Decide what one attempt's outcome records (pure: written by _record_all)."""
    if isinstance(outcome, SendOutcome):
        return Settlement(
            delivery,
            now,
            Status.SENT,
            "sent",
            timeline="notified",
            sent_at=now,
            response_status=outcome.status,
        )

    error = str(outcome)[:1000]
    attempts = delivery.attempts  # loaded after the claim counted this attempt
    logger.warning("delivery %s attempt %s failed: %s", delivery.id, attempts, error)
    # A test notification is answered at once: its first failure is its result.
    if outcome.permanent or delivery.is_test or attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        return Settlement(
            delivery,
            now,
            Status.FAILED,
            "failed for good",
            timeline="notify_failed",
            report=None if delivery.is_test else error,
            last_error=error,
            response_status=outcome.status,
        )

    # A receiver that said when to come back (429 or 503 with Retry-After) is taken at its
    # word; otherwise exponential backoff.
    delay = retry_after_delay(outcome.retry_after, now=now, cap=settings.NOTIFICATION_RETRY_CAP)
    if delay is None:
        delay = retry_delay(
            attempts,
            base=settings.NOTIFICATION_RETRY_BASE,
            cap=settings.NOTIFICATION_RETRY_CAP,
            jitter=random.random() if jitter is None else jitter,  # noqa: S311 (not crypto)
        )
    return Settlement(
        delivery,
        now,
        Status.PENDING,
        f"retry at {(now + delay).isoformat()}",
        next_attempt_at=now + delay,
        last_error=error,
        response_status=outcome.status,
    )


def _summary(delivery: Delivery, what: str | None) -> str:
    return f"delivery {delivery.id}: {what or 'taken over by another worker'}"


def _record_all(settlements: list[Settlement]) -> set[int]:
    """Write the outcomes onto their deliveries, the notifications they carry and, for final
    ones, their incidents' timelines. Only the attempt that holds a row writes (a compare-and-
    set on the attempt number): if a run's lease lapsed and another worker claimed the delivery
    again, the other attempt's outcome is the one that counts. Returns the ids written. Runs
    inside _settle_all's transaction; on PostgreSQL a few statements for the whole set (a burst
    settles hundreds at once), elsewhere one delivery at a time."""
    if connection.vendor != "postgresql":
        return {s.delivery.id for s in settlements if _record(s)}
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with bound_cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS d SET status = v.status, updated_at = v.now, "
            "sent_at = COALESCE(v.sent_at, d.sent_at), next_attempt_at = v.next_attempt_at, "
            "last_error = v.last_error, response_status = v.response_status "
            "FROM unnest(%b::integer[], %b::integer[], %b::varchar[], %b::timestamptz[], "
            "%b::timestamptz[], %b::timestamptz[], %b::text[], %b::integer[]) "
            "AS v(id, attempts, status, now, sent_at, next_attempt_at, last_error, "
            "response_status) "
            "WHERE d.id = v.id AND d.attempts = v.attempts AND d.status IN (%s, %s) "
            "RETURNING d.id",
            [
                [s.delivery.id for s in settlements],
                [s.delivery.attempts for s in settlements],
                [s.status for s in settlements],
                [s.now for s in settlements],
                [s.sent_at for s in settlements],
                [s.next_attempt_at for s in settlements],
                [s.last_error for s in settlements],
                [s.response_status for s in settlements],
                Status.SENDING,
                Status.PENDING,
            ],
        )
        written = {row[0] for row in cursor.fetchall()}
        mine = [s for s in settlements if s.delivery.id in written]
        if not mine:
            return written
        notifications = connection.ops.quote_name(Notification._meta.db_table)
        cursor.execute(
            f"UPDATE {notifications} AS n SET status = v.status, updated_at = v.now, "
            "last_error = v.last_error, sent_at = COALESCE(v.sent_at, n.sent_at) "
            "FROM unnest(%b::integer[], %b::varchar[], %b::timestamptz[], %b::text[], "
            "%b::timestamptz[]) AS v(id, status, now, last_error, sent_at) "
            "WHERE n.delivery_id = v.id",
            [
                [s.delivery.id for s in mine],
                [s.status for s in mine],
                [s.now for s in mine],
                [s.last_error for s in mine],
                [s.sent_at for s in mine],
            ],
        )
    final = {s.delivery.id: s for s in mine if s.timeline}
    if final:
        events = []
        rows = Notification.objects.filter(delivery_id__in=final).order_by("id")
        for row in rows.only("incident_id", "delivery_id", "event", "address", "target"):
            events.append(_timeline_event(final[row.delivery_id], row))
        insert_many(IncidentEvent, events)
    return written


def _record(settlement: Settlement) -> bool:
    """_record_all for one delivery, through the ORM (SQLite)."""
    delivery, status, now = settlement.delivery, settlement.status, settlement.now
    fields = {
        "next_attempt_at": settlement.next_attempt_at,
        "last_error": settlement.last_error,
        "response_status": settlement.response_status,
    }
    if settlement.sent_at is not None:
        fields["sent_at"] = settlement.sent_at
    with transaction.atomic(savepoint=False):
        written = Delivery.objects.filter(
            id=delivery.id,
            attempts=delivery.attempts,
            status__in=[Status.SENDING, Status.PENDING],
        ).update(status=status, updated_at=now, **fields)
        if not written:
            return False
        mirrored = {"status": status, "updated_at": now, "last_error": settlement.last_error}
        if settlement.sent_at is not None:
            mirrored["sent_at"] = settlement.sent_at
        Notification.objects.filter(delivery_id=delivery.id).update(**mirrored)
        if settlement.timeline:
            insert_many(
                IncidentEvent,
                [_timeline_event(settlement, row) for row in delivery.notifications.all()],
            )
    return True


def _timeline_event(settlement: Settlement, row: Notification) -> IncidentEvent:
    """The incident timeline's line for a final outcome of the delivery carrying `row`."""
    delivery = settlement.delivery
    via = (
        f"channel {delivery.channel.name}"
        if delivery.channel_id and delivery.channel
        else f"email to {delivery.address}"
    )
    detail = {
        "about": row.event,
        "to": row.address,
        "target": row.target,
        "via": via,
        "delivery": delivery.id,
        "attempts": delivery.attempts,
    }
    if settlement.timeline == "notify_failed":
        detail["error"] = settlement.last_error
    return IncidentEvent(
        incident_id=row.incident_id, kind=settlement.timeline, at=settlement.now, detail=detail
    )


def deliver_notification(*, notification_id: int, now: datetime) -> str:
    """Flush what is due by `now`, then make an attempt at the delivery that carries this
    notification (an operator's "send it now", and the tests' shortcut through the pipeline)."""
    flush_due_groups(now=now)
    delivery_id = (
        Notification.objects.filter(id=notification_id)
        .values_list("delivery_id", flat=True)
        .first()
    )
    if delivery_id is None:
        return f"notification {notification_id}: nothing to do"
    return deliver(delivery_id=delivery_id, now=now)
