"""Grouping rules (the thundering herd), pure: no ORM, no clock.

A group is (team, target, group key). When a group is due, all its pending notifications go
out together as one message. When each pending notification makes the group due depends on
what it tells the target:

    kind        example                              due at
    ─────────   ──────────────────────────────────   ─────────────────────────────────────────
    new         a failure the target has not heard   created_at, when no burst is open;
                of (down, unsilenced, re-triggered,  created_at + group_wait, when the group's
                an escalation step reaching them)    last message went out less than
                                                     group_wait before it (it joins the burst)
    follow-up   resolved, acknowledged               created_at + group_wait
    update      a reminder, a repeat round to a      created_at + group_wait, and never before
                target already told                  last message + group_interval

So the first failure of a burst is handed to delivery by the very sweep that detects it;
failures that start while the burst is open are batched into one follow-up message after the
group wait (a herd spread over a minute gives at most three messages per target); no new
failure and no recovery ever waits for the group interval, which batches only news about
incidents the target already knows of. The group is due at the earliest of its rows; rows not
yet due ride along in that message rather than wait for one of their own.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

GROUP_BY_TEAM, GROUP_BY_TAG, GROUP_BY_ENVIRONMENT = "team", "tag", "environment"


@dataclass(frozen=True)
class GroupingRules:
    group_by: str
    group_wait: timedelta
    group_interval: timedelta


class NewsKind(StrEnum):
    NEW = "new"
    FOLLOW_UP = "follow-up"
    UPDATE = "update"


@dataclass(frozen=True)
class PendingNews:
    """One pending notification, as the rules see it."""

    created_at: datetime
    kind: NewsKind


def news_kind(*, event: str, target_was_told: bool) -> NewsKind:
    """What a notification is to its target. `target_was_told`: an alert about the same
    incident already went (or is going) to this target."""
    if event in ("resolved", "acknowledged"):
        return NewsKind.FOLLOW_UP
    if event == "reminder":
        return NewsKind.UPDATE
    if event == "escalation" and target_was_told:
        return NewsKind.UPDATE  # a repeat round: the target knows, it is reminded
    # down, unsilenced and re-triggered are news by definition; so is an escalation step that
    # reaches someone for the first time.
    return NewsKind.NEW


def is_burst_open(*, at: datetime, last_message_at: datetime | None, rules: GroupingRules) -> bool:
    """Whether a notification written `at` joins a burst: the group's last message went out
    less than group_wait before (or after: a row that missed it while uncommitted)."""
    return last_message_at is not None and last_message_at > at - rules.group_wait


def news_due_at(
    news: PendingNews, *, last_message_at: datetime | None, rules: GroupingRules
) -> datetime:
    """When `news` makes its group due (see the table in the module docstring)."""
    if news.kind == NewsKind.NEW:
        if is_burst_open(at=news.created_at, last_message_at=last_message_at, rules=rules):
            return news.created_at + rules.group_wait
        return news.created_at
    due = news.created_at + rules.group_wait
    # An interval of zero turns the batching of updates off altogether.
    if (
        news.kind == NewsKind.UPDATE
        and last_message_at is not None
        and rules.group_interval > timedelta(0)
    ):
        due = max(due, last_message_at + rules.group_interval)
    return due


def group_due_at(
    pending: Iterable[PendingNews], *, last_message_at: datetime | None, rules: GroupingRules
) -> datetime | None:
    """When the group with these pending notifications goes out: at its earliest row's due
    time. None when nothing is pending."""
    return min(
        (news_due_at(n, last_message_at=last_message_at, rules=rules) for n in pending),
        default=None,
    )


def group_key_for(*, group_by: str, environment: str, tags: list[str]) -> str:
    """The key that decides which notifications share a message. By tag, a check with several
    tags joins the group of its first tag in alphabetical order (one group per check, so one
    notification is never sent twice), and a check without tags the untagged group ("")."""
    if group_by == GROUP_BY_ENVIRONMENT:
        return environment
    if group_by == GROUP_BY_TAG:
        return sorted(tags)[0] if tags else ""
    return ""


def retry_delay(failed_attempts: int, *, base: timedelta, cap: timedelta, jitter: float):
    """How long to wait after `failed_attempts` (>= 1) failures: exponential (base, 2 base,
    4 base, ...) up to `cap`, with "equal jitter": half the step is fixed, the other half scaled
    by `jitter` in [0, 1), so that many deliveries failing together (a receiver that went down)
    do not come back in lockstep."""
    step = min(cap, base * (2 ** min(failed_attempts - 1, 30)))
    return step / 2 + (step / 2) * jitter


def retry_after_delay(value: str | None, *, now: datetime, cap: timedelta) -> timedelta | None:
    """The wait a receiver asked for in its Retry-After header (RFC 9110: a number of seconds,
    or an HTTP date), at most `cap` (a hostile or broken receiver could ask for a year), never
    negative. None when there is no usable value: the caller's own backoff applies then."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None  # "-0000": not an HTTP date, which is always GMT
        delay = moment - now
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None  # NaN or infinity
        delay = timedelta(seconds=min(seconds, cap.total_seconds()))
    return max(timedelta(0), min(delay, cap))
