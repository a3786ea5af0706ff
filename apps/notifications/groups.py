"""What grouping needs to know of a team, read from the database: its grouping rules and when a
group last got a message. Shared by dispatch (which writes outbox rows and may flush at once)
and the flush (which turns due rows into messages), so that neither imports the other's
internals."""

from datetime import datetime

from django.conf import settings
from django.db.models import Max

from .grouping import GroupingRules
from .models import Delivery, TeamNotificationSettings

# Events that alert someone to an incident that needs them; "resolved" and "acknowledged" are
# follow-ups.
ALERTING_EVENTS = frozenset({"down", "escalation", "reminder", "retriggered", "unsilenced"})


def grouping_rules(team_id: int) -> GroupingRules:
    row = TeamNotificationSettings.objects.filter(team_id=team_id).first()
    if row is None:
        return GroupingRules(
            group_by=TeamNotificationSettings.GroupBy.TEAM,
            group_wait=settings.NOTIFICATION_GROUP_WAIT,
            group_interval=settings.NOTIFICATION_GROUP_INTERVAL,
        )
    return GroupingRules(row.group_by, row.group_wait, row.group_interval)


def last_message_at(*, team_id: int, target: str, group_key: str) -> datetime | None:
    """When the group (team, target, group key) last got a message (test sends aside)."""
    return Delivery.objects.filter(
        team_id=team_id, target=target, group_key=group_key, is_test=False
    ).aggregate(last=Max("created_at"))["last"]
