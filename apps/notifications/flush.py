"""The grouping flush: put the notifications of every due group into one Delivery each, and
hand the deliveries to workers after commit. It runs right after the commit of a write that
owes news due at once (dispatch.flush_after_commit: the first failure of a burst), and beat
runs it every NOTIFICATION_FLUSH_INTERVAL seconds for the rest, with the database's `now`;
tests call it with any `now`. When a group is due is decided by grouping.py."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from apps.incidents.models import Incident

from .grouping import (
    GroupingRules,
    NewsKind,
    PendingNews,
    group_due_at,
    is_burst_open,
    news_kind,
)
from .groups import ALERTING_EVENTS, grouping_rules, last_message_at
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
            due_at = pending_group_due_at(
                team_id=group_team_id, target=target, group_key=group_key, rows=rows, rules=rules
            )
            if due_at is None or due_at > now:
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


def pending_group_due_at(
    *, team_id: int, target: str, group_key: str, rows: list[Notification], rules: GroupingRules
) -> datetime | None:
    """When the group (team, target, group key) with these pending `rows` goes out."""
    told = _incidents_told(target, {row.incident_id for row in rows})
    news = [
        PendingNews(
            created_at=row.created_at,
            kind=news_kind(event=row.event, target_was_told=row.incident_id in told),
        )
        for row in rows
    ]
    last = last_message_at(team_id=team_id, target=target, group_key=group_key)
    return group_due_at(news, last_message_at=last, rules=rules)


@dataclass(frozen=True)
class HeldMessage:
    """Why a pending notification has not gone out yet, for the incident page."""

    due_at: datetime
    other_checks: int  # other checks whose news goes out in the same message
    reason: str
    is_overdue: bool  # due already: the next flush (every few seconds) sends it


def held_notifications(incident: Incident, *, now: datetime) -> dict[int, HeldMessage]:
    """For each pending notification of `incident` not yet in a message: when its group goes
    out and why it waits. Reads only; the flush decides for real."""
    team_id = incident.owner.team_id
    mine = list(
        incident.notifications.filter(status=Status.PENDING, delivery__isnull=True).order_by(
            "created_at", "id"
        )
    )
    if not mine:
        return {}
    rules = grouping_rules(team_id)
    held = {}
    for row in mine:
        group = list(
            Notification.objects.filter(
                status=Status.PENDING,
                delivery__isnull=True,
                incident__owner__team_id=team_id,
                target=row.target,
                group_key=row.group_key,
            )
            .select_related("incident")
            .order_by("created_at", "id")
        )
        due_at = pending_group_due_at(
            team_id=team_id, target=row.target, group_key=row.group_key, rows=group, rules=rules
        )
        told = row.incident_id in _incidents_told(row.target, {row.incident_id})
        due_at = due_at or now
        held[row.id] = HeldMessage(
            due_at=due_at,
            is_overdue=due_at <= now,
            other_checks=len({r.incident.owner_id for r in group} - {incident.owner_id}),
            reason=_why_held(row, told=told, rules=rules, team_id=team_id),
        )
    return held


def _why_held(row: Notification, *, told: bool, rules: GroupingRules, team_id: int) -> str:
    wait = spelled_seconds(rules.group_wait)
    kind = news_kind(event=row.event, target_was_told=told)
    if kind == NewsKind.FOLLOW_UP:
        return f"follow-ups wait the group wait ({wait}) so that a burst's news shares a message"
    if kind == NewsKind.UPDATE:
        return (
            f"the target already knows of this incident: updates are batched at most every "
            f"{spelled_seconds(rules.group_interval)} (group interval)"
        )
    last = last_message_at(team_id=team_id, target=row.target, group_key=row.group_key)
    if is_burst_open(at=row.created_at, last_message_at=last, rules=rules):
        return (
            f"it joins a burst already being told: failures that start within the group wait "
            f"({wait}) of a message are batched into one follow-up"
        )
    return "a new failure goes out at once: it is being handed to delivery"


def spelled_seconds(duration) -> str:
    seconds = int(duration.total_seconds())
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _incidents_told(target: str, incident_ids: set[int]) -> set[int]:
    """Of `incident_ids`, those about which an alert went (or is going) to `target`: one
    query for a whole group, not one per row."""
    return set(
        Notification.objects.filter(
            incident_id__in=incident_ids,
            target=target,
            event__in=ALERTING_EVENTS,
            delivery__isnull=False,
        )
        .exclude(status=Status.SKIPPED)
        .values_list("incident_id", flat=True)
    )


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
            # A dependent whose parent went down after the row was written is covered by its
            # root cause now: the parent's message tells the story.
            needed = (
                incident.state == Incident.State.TRIGGERED
                and incident.hold != Incident.Hold.SUPPRESSED
            )
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
