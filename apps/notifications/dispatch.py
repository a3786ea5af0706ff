"""The notifications side of the contract with escalation: who is owed a notification about
what. Escalation decides WHEN (its `notifications_owed` signal, received in receivers.py), and
incidents announce acknowledgments and resolutions; this module writes
outbox rows in the caller's transaction and does no network I/O. The rows are put into
messages by the grouping flush (apps/notifications/flush.py) and sent by Celery tasks.
"""

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Max

from apps.bulk import insert_many
from apps.escalation.signals import Owed, Recipient
from apps.incidents.models import Incident
from apps.teams.models import Membership

from .flush import flush_due_groups
from .grouping import GroupingRules, group_key_for, is_burst_open
from .groups import ALERTING_EVENTS, grouping_rules, last_message_at
from .models import Channel, Notification

# What notify() accepts: every one of them alerts someone to an incident that needs them.
# "resolved" and "acknowledged" are follow-ups, with functions of their own below.
EVENTS = ALERTING_EVENTS


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
    return notify_many([Owed(incident, event, tuple(recipients), round, step)], now=now)


def notify_many(owed: list[Owed], *, now: datetime) -> int:
    """notify() for many at once (a sweep's batch), in a fixed number of queries."""
    for item in owed:
        if item.event not in EVENTS:
            raise ValueError(f"unknown notification event {item.event!r}")
    return _write_rows(owed, now=now)


def notify_resolved(*, incident: Incident, now: datetime) -> int:
    """Tell everyone who was told about `incident` (and nobody else) that it is resolved.
    Rows for targets whose alert never went out (the incident resolved inside the grouping
    window) are skipped by the flush, so nobody hears "resolved" about something they never
    heard of. Returns the number of rows written."""
    return notify_resolved_many([incident], now=now)


def notify_resolved_many(incidents: list[Incident], *, now: datetime) -> int:
    told = _recipients_told(incidents)
    owed = [
        Owed(incident, Notification.Event.RESOLVED, tuple(told.get(incident.id, ())), 0, 0)
        for incident in incidents
    ]
    return _write_rows(owed, now=now)


def notify_acknowledged(*, incident: Incident, by_user, now: datetime) -> int:
    """Tell everyone who was told about `incident` that `by_user` acknowledged it (the one who
    acknowledged is not told). Each acknowledgment is its own round (an incident re-triggered
    by an acknowledgment timeout can be acknowledged again)."""
    previous = Notification.objects.filter(
        incident=incident, event=Notification.Event.ACKNOWLEDGED
    ).aggregate(last=Max("round"))["last"]
    by_user_id = getattr(by_user, "id", None)
    recipients = [
        r
        for r in _recipients_told([incident]).get(incident.id, [])
        if r.user_id is None or r.user_id != by_user_id
    ]
    round_ = 0 if previous is None else previous + 1
    owed = Owed(incident, Notification.Event.ACKNOWLEDGED, tuple(recipients), round_, 0)
    return _write_rows([owed], now=now)


def _recipients_told(incidents: list[Incident]) -> dict[int, list[Recipient]]:
    """Incident id -> the targets that were sent (or owed) an alert about it, in one query."""
    rows = (
        Notification.objects.filter(incident__in=incidents, event__in=ALERTING_EVENTS)
        .exclude(status=Notification.DeliveryStatus.SKIPPED)
        .values_list("incident_id", "target")
        .distinct()
    )
    targets: dict[int, set] = {}
    for incident_id, target in rows:
        targets.setdefault(incident_id, set()).add(target)
    told = {}
    for incident_id, found in targets.items():
        recipients = []
        for target in sorted(found):
            kind, _, raw_id = target.partition(":")
            if kind == "user":
                recipients.append(Recipient(user_id=int(raw_id)))
            elif kind == "channel":
                recipients.append(Recipient(channel_id=int(raw_id)))
        told[incident_id] = recipients
    return told


def _write_rows(owed: list[Owed], *, now: datetime) -> int:
    """The outbox rows for everything `owed`, in one INSERT. Reachable targets only: a user
    must still be an active member of the incident's team with an address; a channel must be
    the team's own and enabled. Targets already owed the same (incident, event, round, step)
    are skipped."""
    owed = [item for item in owed if item.recipients]
    if not owed:
        return 0
    team_ids = {item.incident.owner.team_id for item in owed}
    rules = {team_id: grouping_rules(team_id) for team_id in sorted(team_ids)}
    user_ids = {r.user_id for item in owed for r in item.recipients if r.user_id is not None}
    channel_ids = {
        r.channel_id for item in owed for r in item.recipients if r.channel_id is not None
    }
    members = {}
    if user_ids:
        for m in (
            Membership.objects.filter(team_id__in=team_ids, user_id__in=user_ids)
            .filter(user__is_active=True)
            .exclude(user__email="")
            .select_related("user")
        ):
            members[(m.team_id, m.user_id)] = m.user
    channels = {}
    if channel_ids:
        for c in Channel.objects.filter(team_id__in=team_ids, id__in=channel_ids, is_enabled=True):
            channels[(c.team_id, c.id)] = c
    already = set(
        Notification.objects.filter(
            incident__in={item.incident.id for item in owed},
            event__in={item.event for item in owed},
        ).values_list("incident_id", "event", "round", "step", "target")
    )
    rows, teams_written = [], set()
    for item in owed:
        incident, check = item.incident, item.incident.owner
        team_id = check.team_id
        group_key = group_key_for(
            group_by=rules[team_id].group_by, environment=check.environment, tags=check.tag_list
        )
        seen = set()
        for recipient in item.recipients:
            target = recipient.target
            key = (incident.id, item.event, item.round, item.step, target)
            if target in seen or key in already:
                continue
            seen.add(target)
            row = Notification(
                incident=incident,
                event=item.event,
                round=item.round,
                step=item.step,
                target=target,
                group_key=group_key,
                created_at=now,
                updated_at=now,
            )
            if recipient.user_id is not None:
                user = members.get((team_id, recipient.user_id))
                if user is None:
                    continue
                row.recipient, row.address = user, user.email
            else:
                channel = channels.get((team_id, recipient.channel_id))
                if channel is None:
                    continue
                row.channel, row.address = channel, channel.name
                if channel.is_incident_aware:
                    # PagerDuty and Opsgenie keep one incident per Tocsin incident: each is a
                    # message of its own (and a delivery with its own retries), never grouped.
                    row.group_key = incident_group_key(incident.id)
            rows.append(row)
            teams_written.add(team_id)
    if not rows:
        return 0
    insert_many(Notification, rows, ignore_conflicts=True)
    for team_id in sorted(teams_written):
        team_rows = [row for row in rows if row.incident.owner.team_id == team_id]
        if rules[team_id].group_wait.total_seconds() <= 0 or _opens_a_burst(
            team_rows, team_id=team_id, rules=rules[team_id], now=now
        ):
            flush_after_commit(team_id, as_of=now)
    return len(rows)


def incident_group_key(incident_id: int) -> str:
    return f"incident:{incident_id}"


def _opens_a_burst(
    rows: list[Notification], *, team_id: int, rules: GroupingRules, now: datetime
) -> bool:
    """Whether one of `rows` is news due at once: a failure for a target whose group has no
    burst open. Then the writing transaction (the sweep that detected it) hands it to delivery
    as it commits, instead of leaving it to the beat's next flush."""
    # One look per (target, group): a herd of a thousand failures told to one channel costs one
    # query here, not a thousand.
    groups = {
        (row.target, row.group_key)
        for row in rows
        if row.event in ("down", "unsilenced", "retriggered", "escalation")
    }  # reminders and follow-ups are never due at once
    for target, group_key in sorted(groups):
        last = last_message_at(team_id=team_id, target=target, group_key=group_key)
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
        try:
            flush_due_groups(now=as_of, team_id=team_id)
        except Exception:
            logging.getLogger(__name__).exception(
                "the flush after commit failed for team %s; the beat's flush will do it", team_id
            )

    flush.flushes_team = team_id
    transaction.on_commit(flush)
