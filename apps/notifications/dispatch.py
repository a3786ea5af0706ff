"""The notifications side of the contract with escalation: who is owed a notification about
what. Callers (the escalation engine, the incident services) decide WHEN; this module writes
outbox rows in the caller's transaction and does no network I/O. The rows are put into
messages by the grouping flush (apps/notifications/flush.py) and sent by Celery tasks.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from apps.incidents.models import Incident
from apps.teams.models import Membership

from .grouping import GroupingRules, group_key_for, is_burst_open
from .models import Channel, Delivery, Notification, TeamNotificationSettings

# What notify() accepts: every one of them alerts someone to an incident that needs them.
# "resolved" and "acknowledged" are follow-ups, with functions of their own below.
EVENTS = frozenset({"down", "escalation", "reminder", "retriggered", "unsilenced"})
ALERTING_EVENTS = EVENTS


@dataclass(frozen=True)
class Recipient:
    """One target: a team member (reached through their own contact methods: their email
    address today) or one of the team's channels. Exactly one of the two is set."""

    user_id: int | None = None
    channel_id: int | None = None

    def __post_init__(self):
        if (self.user_id is None) == (self.channel_id is None):
            raise ValueError("a Recipient is a user or a channel, exactly one of the two")

    @property
    def target(self) -> str:
        return f"user:{self.user_id}" if self.user_id is not None else f"channel:{self.channel_id}"


def grouping_rules(team_id: int) -> GroupingRules:
    row = TeamNotificationSettings.objects.filter(team_id=team_id).first()
    if row is None:
        return GroupingRules(
            group_by=TeamNotificationSettings.GroupBy.TEAM,
            group_wait=settings.NOTIFICATION_GROUP_WAIT,
            group_interval=settings.NOTIFICATION_GROUP_INTERVAL,
        )
    return GroupingRules(row.group_by, row.group_wait, row.group_interval)


def notify(
    *,
    incident: Incident,
    event: str,
    recipients: Iterable[Recipient],
    round: int,
    step: int,
    now: datetime,
) -> int:
    """Owe `recipients` a notification about `event` on `incident` (round and step of its
    escalation). Runs inside the caller's transaction; writes one outbox row per target that
    can be reached (an active team member with an email address, an enabled channel of the
    incident's team; anything else is skipped), unique per (incident, event, round, step,
    target), so a retried or concurrent call writes nothing twice. No network I/O: the rows go
    out when their group's window is due. Returns the number of rows written (a concurrent
    identical call may make this an overcount; the unique constraint keeps the rows single)."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    return _write_rows(
        incident=incident,
        event=event,
        recipients=list(recipients),
        round=round,
        step=step,
        now=now,
    )


def notify_resolved(*, incident: Incident, now: datetime) -> int:
    """Tell everyone who was told about `incident` (and nobody else) that it is resolved.
    Rows for targets whose alert never went out (the incident resolved inside the grouping
    window) are skipped by the flush, so nobody hears "resolved" about something they never
    heard of. Returns the number of rows written."""
    return _write_rows(
        incident=incident,
        event=Notification.Event.RESOLVED,
        recipients=_recipients_told(incident),
        round=0,
        step=0,
        now=now,
    )


def notify_acknowledged(*, incident: Incident, by_user, now: datetime) -> int:
    """Tell everyone who was told about `incident` that `by_user` acknowledged it (the one who
    acknowledged is not told). Each acknowledgment is its own round (an incident re-triggered
    by an acknowledgment timeout can be acknowledged again)."""
    previous = Notification.objects.filter(
        incident=incident, event=Notification.Event.ACKNOWLEDGED
    ).aggregate(last=Max("round"))["last"]
    by_user_id = getattr(by_user, "id", None)
    recipients = [
        r for r in _recipients_told(incident) if r.user_id is None or r.user_id != by_user_id
    ]
    return _write_rows(
        incident=incident,
        event=Notification.Event.ACKNOWLEDGED,
        recipients=recipients,
        round=0 if previous is None else previous + 1,
        step=0,
        now=now,
    )


def _recipients_told(incident: Incident) -> list[Recipient]:
    rows = (
        Notification.objects.filter(incident=incident, event__in=ALERTING_EVENTS)
        .exclude(status=Notification.DeliveryStatus.SKIPPED)
        .values_list("target", flat=True)
        .distinct()
    )
    recipients = []
    for target in sorted(set(rows)):
        kind, _, raw_id = target.partition(":")
        if kind == "user":
            recipients.append(Recipient(user_id=int(raw_id)))
        elif kind == "channel":
            recipients.append(Recipient(channel_id=int(raw_id)))
    return recipients


def _write_rows(*, incident, event, recipients, round, step, now) -> int:
    check = incident.owner
    team_id = check.team_id
    rules = grouping_rules(team_id)
    group_key = group_key_for(
        group_by=rules.group_by, environment=check.environment, tags=check.tag_list
    )
    user_ids = {r.user_id for r in recipients if r.user_id is not None}
    channel_ids = {r.channel_id for r in recipients if r.channel_id is not None}
    # Reachable targets only: a user must still be an active member of the incident's team
    # with an address; a channel must be the team's own and enabled.
    members = {
        m.user_id: m.user
        for m in Membership.objects.filter(team_id=team_id, user_id__in=user_ids)
        .filter(user__is_active=True)
        .exclude(user__email="")
        .select_related("user")
    }
    channels = {
        c.id: c
        for c in Channel.objects.filter(team_id=team_id, id__in=channel_ids, is_enabled=True)
    }
    already = set(
        Notification.objects.filter(
            incident=incident, event=event, round=round, step=step
        ).values_list("target", flat=True)
    )
    rows, seen = [], set()
    for recipient in recipients:
        target = recipient.target
        if target in seen or target in already:
            continue
        seen.add(target)
        row = Notification(
            incident=incident,
            event=event,
            round=round,
            step=step,
            target=target,
            group_key=group_key,
            created_at=now,
            updated_at=now,
        )
        if recipient.user_id is not None:
            user = members.get(recipient.user_id)
            if user is None:
                continue
            row.recipient, row.address = user, user.email
        else:
            channel = channels.get(recipient.channel_id)
            if channel is None:
                continue
            row.channel, row.address = channel, channel.name
        rows.append(row)
    if not rows:
        return 0
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    if rules.group_wait.total_seconds() <= 0 or _opens_a_burst(
        rows, team_id=team_id, rules=rules, now=now
    ):
        flush_after_commit(team_id, as_of=now)
    return len(rows)


def last_message_at(*, team_id: int, target: str, group_key: str) -> datetime | None:
    """When the group (team, target, group key) last got a message (test sends aside)."""
    return Delivery.objects.filter(
        team_id=team_id, target=target, group_key=group_key, is_test=False
    ).aggregate(last=Max("created_at"))["last"]


def _opens_a_burst(
    rows: list[Notification], *, team_id: int, rules: GroupingRules, now: datetime
) -> bool:
    """Whether one of `rows` is news due at once: a failure for a target whose group has no
    burst open. Then the writing transaction (the sweep that detected it) hands it to delivery
    as it commits, instead of leaving it to the beat's next flush."""
    for row in rows:
        if row.event not in ("down", "unsilenced", "retriggered", "escalation"):
            continue  # reminders and follow-ups are never due at once
        last = last_message_at(team_id=team_id, target=row.target, group_key=row.group_key)
        if not is_burst_open(at=now, last_message_at=last, rules=rules):
            return True
    return False


def flush_after_commit(team_id: int, *, as_of: datetime) -> None:
    """News due at once (no grouping wait, or the first failure of a burst): flush the team's
    groups as of `as_of` right after this transaction commits, in this process, so the
    deliveries are enqueued by the commit of the sweep that owed them, not by the beat's next
    tick. One flush per team and transaction, however many rows it wrote. An error loses
    nothing: the rows are pending and the beat's flush finds them."""
    connection = transaction.get_connection()
    for _savepoints, callback, *_rest in connection.run_on_commit:
        if getattr(callback, "flushes_team", None) == team_id:
            return

    def flush():
        from .flush import flush_due_groups

        try:
            flush_due_groups(now=as_of, team_id=team_id)
        except Exception:
            logging.getLogger(__name__).exception(
                "the flush after commit failed for team %s; the beat's flush will do it", team_id
            )

    flush.flushes_team = team_id
    transaction.on_commit(flush)
