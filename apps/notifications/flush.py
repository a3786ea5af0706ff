"""The grouping flush: put the notifications of every due group into one Delivery each, and
hand the deliveries to workers after commit. Beat runs it every NOTIFICATION_FLUSH_INTERVAL
seconds with the database's `now`; tests call it with any `now`."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Max

from apps.incidents.models import Incident

from .dispatch import ALERTING_EVENTS, grouping_rules
from .grouping import is_group_due
from .models import Delivery, Notification

Status = Notification.DeliveryStatus


@dataclass
class FlushResult:
    deliveries: list[int] = field(default_factory=list)
    grouped: int = 0
    skipped: int = 0
    waiting: int = 0

    def __str__(self) -> str:
        return (
            f"{len(self.deliveries)} messages for {self.grouped} notifications, "
            f"{self.skipped} skipped, {self.waiting} waiting"
        )


def flush_due_groups(
    *, now: datetime, team_id: int | None = None, batch_size: int = 5000
) -> FlushResult:
    """Group the pending notifications whose group is due by `now` into deliveries (one per
    team, target and group key) and enqueue them after commit. Notifications whose incident
    no longer needs them (resolved, or acknowledged, before they went out) are skipped; so is
    a "resolved" for a target that never heard of the incident. Rows are claimed with SKIP
    LOCKED, and flushes take turns (_one_flush_at_a_time), so a group is never split by a race
    and no notification goes into two messages."""
    result = FlushResult()
    with transaction.atomic():
        _one_flush_at_a_time()
        pending = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Status.PENDING, delivery__isnull=True)
            .select_related("incident__owner", "channel")
            .order_by("created_at", "id")
        )
        if team_id is not None:
            pending = pending.filter(incident__owner__team_id=team_id)
        groups: dict[tuple[int, str, str], list[Notification]] = defaultdict(list)
        for row in pending[:batch_size]:
            groups[(row.incident.owner.team_id, row.target, row.group_key)].append(row)

        rules_by_team = {}
        for (group_team_id, target, group_key), rows in groups.items():
            rules = rules_by_team.get(group_team_id) or grouping_rules(group_team_id)
            rules_by_team[group_team_id] = rules
            last_message_at = Delivery.objects.filter(
                team_id=group_team_id, target=target, group_key=group_key, is_test=False
            ).aggregate(last=Max("created_at"))["last"]
            if not is_group_due(
                oldest_pending_at=rows[0].created_at,
                last_message_at=last_message_at,
                rules=rules,
                now=now,
            ):
                result.waiting += len(rows)
                continue
            keep, skip = _still_needed(rows)
            if skip:
                Notification.objects.filter(id__in=[r.id for r in skip]).update(
                    status=Status.SKIPPED, updated_at=now
                )
                result.skipped += len(skip)
            if not keep:
                continue
            delivery = Delivery.objects.create(
                team_id=group_team_id,
                target=target,
                channel_id=keep[0].channel_id,
                recipient_id=keep[0].recipient_id,
                address=keep[0].address,
                group_key=group_key,
                summary=summarize(keep)[:300],
                created_at=now,
                updated_at=now,
                next_attempt_at=now,
            )
            Notification.objects.filter(id__in=[r.id for r in keep]).update(
                delivery=delivery, updated_at=now
            )
            result.deliveries.append(delivery.id)
            result.grouped += len(keep)
        enqueue_deliveries_after_commit(result.deliveries)
    return result


# Any fixed number: the key of the advisory lock that serialises flushes.
FLUSH_LOCK_KEY = 7_054_021


def _one_flush_at_a_time() -> None:
    """Concurrent flushes (the beat's and one after a commit) would each SKIP LOCKED their way
    through a burst and split one group into several messages. A transaction-level advisory
    lock makes them take turns; a flush is short, and the second then finds the rows already
    grouped. SQLite has one writer at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FLUSH_LOCK_KEY])


def _still_needed(rows: list[Notification]) -> tuple[list[Notification], list[Notification]]:
    keep, skip = [], []
    for row in rows:
        incident = row.incident
        if row.target.startswith("channel:") and (
            row.channel is None or not row.channel.is_enabled
        ):
            # Disabled or deleted since the row was written: the admins did that on purpose,
            # so it is not a delivery failure to report.
            skip.append(row)
            continue
        if row.event in ALERTING_EVENTS:
            needed = incident.state == Incident.State.TRIGGERED
        elif row.event == Notification.Event.RESOLVED:
            needed = _was_told(row)
        else:  # acknowledged
            needed = incident.is_open and _was_told(row)
        (keep if needed else skip).append(row)
    return keep, skip


def _was_told(row: Notification) -> bool:
    """Whether an alert about this incident went (or is going) to this target."""
    return (
        Notification.objects.filter(
            incident_id=row.incident_id,
            target=row.target,
            event__in=ALERTING_EVENTS,
            delivery__isnull=False,
        )
        .exclude(status=Status.SKIPPED)
        .exists()
    )


HEADLINES = {
    "down": "DOWN",
    "escalation": "DOWN (escalated)",
    "reminder": "STILL DOWN",
    "retriggered": "DOWN AGAIN",
    "unsilenced": "DOWN",
    "acknowledged": "ACKNOWLEDGED",
    "resolved": "RESOLVED",
}
# How a group's summary counts each event: "3 checks down, 1 resolved".
COUNT_WORDS = {
    "down": "down",
    "escalation": "down",
    "reminder": "down",
    "retriggered": "down",
    "unsilenced": "down",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
}


def check_label(check) -> str:
    return f"{check.name} ({check.environment})" if check.environment else check.name


def summarize(rows: list[Notification]) -> str:
    """One line for a message: "DOWN nightly-backup (production)" for one notification,
    "12 checks down: a, b, c and 9 more" for a group."""
    # Several notifications about one incident (two steps that fell in one window) count once,
    # by the latest.
    latest = list({row.incident_id: row for row in rows}.values())
    if len(latest) == 1:
        return f"{HEADLINES[latest[0].event]} {check_label(latest[0].incident.owner)}"
    rows = sorted(latest, key=lambda row: check_label(row.incident.owner))
    counts: dict[str, int] = {}
    for row in rows:
        word = COUNT_WORDS[row.event]
        counts[word] = counts.get(word, 0) + 1
    parts = [f"{n} {word}" for word, n in counts.items()]
    first_word, first_n = next(iter(counts.items()))
    parts[0] = f"{first_n} check{'s' if first_n != 1 else ''} {first_word}"
    names = [check_label(row.incident.owner) for row in rows[:5]]
    listed = ", ".join(names) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
    return f"{', '.join(parts)}: {listed}"


def enqueue_deliveries_after_commit(delivery_ids: list[int]) -> None:
    if not delivery_ids:
        return
    from .tasks import wake_deliverers

    transaction.on_commit(lambda: wake_deliverers(len(delivery_ids)))
