"""The facts of an incident event as (label, value) pairs with human dates, shared by the kinds
that lay them out themselves (Telegram, Discord, Microsoft Teams, Pushover, PagerDuty,
Opsgenie). Times are written as people read them ("2 Nov 2026, 03:00:00 UTC"), in the
message's zone (UTC for a channel: a channel has no reader of its own)."""

from datetime import datetime

from django.utils import timezone

from apps.teams.templatetags.times import when

from ..message import Item, Message


def human_time(value: datetime | str | None, zone: str) -> str:
    """A datetime or ISO string as "2 Nov 2026, 03:00:00 UTC" in `zone`; "" for nothing."""
    with timezone.override(zone):
        return when(value, "seconds")


def item_facts(item: Item, zone: str) -> list[tuple[str, str]]:
    """What a reader needs to judge the event, in the order the email gives them."""
    opened = human_time(item.opened_at, zone)
    if item.event == "resolved":
        facts = [("Resolution", item.resolution or "resolved")]
        if item.resolved_by:
            facts.append(("Resolved by", item.resolved_by))
        return [*facts, ("Opened", opened), ("Resolved", human_time(item.resolved_at, zone))]
    if item.event == "acknowledged":
        return [("Acknowledged by", item.acknowledged_by or "someone"), ("Opened", opened)]
    facts = [("Why", item.why), ("Severity", item.severity)]
    if item.event == "escalation":
        repeat = f", repeat {item.round}" if item.round else ""
        facts.append(("Escalated", f"step {item.step + 1}{repeat}"))
    if item.expected_at or item.incident_kind == "missed_heartbeat":
        facts.append(("Expected at", human_time(item.expected_at, zone) or "-"))
    facts.append(("Last ping at", human_time(item.last_ping_at, zone) or "never"))
    if item.failed_at:
        facts.append(("Failed at", human_time(item.failed_at, zone)))
    if item.exit_status is not None:
        facts.append(("Exit status", str(item.exit_status)))
    if item.duration_text:
        facts.append(("Run duration", item.duration_text))
    if item.run_id:
        facts.append(("Run id", item.run_id))
    facts.append(("Tags", ", ".join(item.tags) or "-"))
    facts.append(("Opened", opened))
    return facts


def item_headline(item: Item) -> str:
    """ "nightly-backup (production) is DOWN" / "... was acknowledged by ann" / "... is
    RESOLVED"."""
    if item.event == "acknowledged":
        by = f" by {item.acknowledged_by}" if item.acknowledged_by else ""
        return f"{item.label} was acknowledged{by}"
    return f"{item.label} is {item.headline}"


def test_text(message: Message, what: str = "channel") -> str:
    return f"Test notification from Tocsin for {message.team_name}: this {what} works."


def cut(text: str, limit: int, marker: str = "…") -> str:
    """`text` at most `limit` characters, cut with a marker."""
    return text if len(text) <= limit else text[: limit - len(marker)] + marker


def output_tail(item: Item, limit: int) -> str:
    """The last `limit` characters of the job's output, for alerts only."""
    if not item.body_tail or not item.is_alert:
        return ""
    return item.body_tail[-limit:]
