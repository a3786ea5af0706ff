"""Grouping rules (the thundering herd), pure: no ORM, no clock.

A group is (team, target, group key). Its pending notifications go out together, as one
message, when the group is due:

    due_at = oldest pending notification + group_wait
             but never before the group's last message + group_interval

So the first notification of a burst waits `group_wait` for the others to join it, and checks
that fail later while the group keeps sending are batched into follow-ups at most every
`group_interval`. A group that has been quiet for longer than `group_interval` starts afresh.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

GROUP_BY_TEAM, GROUP_BY_TAG, GROUP_BY_ENVIRONMENT = "team", "tag", "environment"


@dataclass(frozen=True)
class GroupingRules:
    group_by: str
    group_wait: timedelta
    group_interval: timedelta


def group_key_for(*, group_by: str, environment: str, tags: list[str]) -> str:
    """The key that decides which notifications share a message. By tag, a check with several
    tags joins the group of its first tag in alphabetical order (one group per check, so one
    notification is never sent twice), and a check without tags the untagged group ("")."""
    if group_by == GROUP_BY_ENVIRONMENT:
        return environment
    if group_by == GROUP_BY_TAG:
        return sorted(tags)[0] if tags else ""
    return ""


def group_due_at(
    *,
    oldest_pending_at: datetime,
    last_message_at: datetime | None,
    rules: GroupingRules,
) -> datetime:
    due = oldest_pending_at + rules.group_wait
    # An interval of zero turns follow-up batching off altogether.
    if last_message_at is not None and rules.group_interval > timedelta(0):
        due = max(due, last_message_at + rules.group_interval)
    return due


def is_group_due(
    *,
    oldest_pending_at: datetime,
    last_message_at: datetime | None,
    rules: GroupingRules,
    now: datetime,
) -> bool:
    return (
        group_due_at(
            oldest_pending_at=oldest_pending_at, last_message_at=last_message_at, rules=rules
        )
        <= now
    )


def retry_delay(failed_attempts: int, *, base: timedelta, cap: timedelta, jitter: float):
    """How long to wait after `failed_attempts` (>= 1) failures: exponential (base, 2 base,
    4 base, ...) up to `cap`, with "equal jitter": half the step is fixed, the other half scaled
    by `jitter` in [0, 1), so that many deliveries failing together (a receiver that went down)
    do not come back in lockstep."""
    step = min(cap, base * (2 ** min(failed_attempts - 1, 30)))
    return step / 2 + (step / 2) * jitter
