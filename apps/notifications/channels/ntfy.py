"""ntfy (https://ntfy.sh, or a self-hosted ntfy server): push notifications to phones.

The message is the body; Title, Priority, Tags, Click and Actions go in headers (non-ASCII
values as RFC 2047 encoded words, which ntfy decodes). ntfy shows at most three action
buttons: Acknowledge, Resolve and "Not me"; the silence links are in the body.
"""

from email.header import Header

from ..message import Item, Message
from ..models import Channel
from .http import HTTPSender

MAX_MESSAGE_BYTES = 3900  # ntfy turns longer messages into attachments
BUTTONS = (("acknowledge", "Acknowledge"), ("resolve", "Resolve"), ("escalate", "Not me"))
PRIORITY = {"critical": "urgent", "warning": "high", "info": "default"}


def header_value(value: str) -> str:
    """A header value on one line; non-ASCII text as an RFC 2047 encoded word."""
    value = " ".join(value.split())
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(maxlinelen=10_000)


def item_lines(item: Item) -> list[str]:
    if item.event == "resolved":
        by = f" ({item.resolved_by})" if item.resolved_by else ""
        return [f"{item.label} is RESOLVED: {item.resolution or 'resolved'}{by}"]
    if item.event == "acknowledged":
        return [
            f"{item.label} was acknowledged"
            + (f" by {item.acknowledged_by}" if item.acknowledged_by else "")
        ]
    lines = [
        f"{item.label} is {item.headline}",
        f"Why: {item.why}",
        f"Severity: {item.severity}",
    ]
    if item.expected_at:
        lines.append(f"Expected at: {item.expected_at}")
    lines.append(f"Last ping at: {item.last_ping_at or 'never'}")
    if item.exit_status is not None:
        lines.append(f"Exit status: {item.exit_status}")
    if item.duration_text:
        lines.append(f"Run duration: {item.duration_text}")
    if item.run_id:
        lines.append(f"Run id: {item.run_id}")
    lines.append(f"Tags: {', '.join(item.tags) or '-'}")
    if item.body_tail:
        lines += ["Last lines of the output:", item.body_tail[-800:]]
    lines.append(f"Incident: {item.incident_url}")
    lines.append(f"Check: {item.check_url}")
    lines += [f"{action.label}: {action.url}" for action in item.actions]
    return lines


def body_text(message: Message) -> str:
    if message.is_test:
        return f"Test notification from Tocsin for {message.team_name}: this topic works."
    blocks = ["\n".join(item_lines(item)) for item in message.items]
    text = "\n\n".join(([message.summary] if len(message.items) > 1 else []) + blocks)
    encoded = text.encode()
    if len(encoded) > MAX_MESSAGE_BYTES:
        text = encoded[: MAX_MESSAGE_BYTES - 20].decode(errors="ignore") + "\n… (cut)"
    return text


def headers(message: Message, channel: Channel) -> dict[str, str]:
    result = {"Title": header_value(message.title)}
    if message.is_test:
        result["Tags"] = "white_check_mark"
        return result
    severities = [item.severity for item in message.items if item.is_alert]
    worst = max(severities, key=["info", "warning", "critical"].index) if severities else None
    result["Priority"] = PRIORITY.get(worst, "default") if worst else "default"
    tags = ["rotating_light" if worst else "white_check_mark"]
    first = message.items[0]
    tags += [tag for tag in [first.environment, *first.tags] if tag and "," not in tag][:4]
    result["Tags"] = header_value(",".join(tags))
    result["Click"] = first.incident_url
    if len(message.items) == 1 and first.actions:
        urls = {action.name: action.url for action in first.actions}
        actions = [f'view, "{label}", {urls[name]}' for name, label in BUTTONS if name in urls]
        result["Actions"] = "; ".join(actions)
    token = channel.config.get("token")
    if token:
        result["Authorization"] = f"Bearer {token}"
    return result


class Ntfy(HTTPSender):
    content_type = "text/plain; charset=utf-8"

    def body(self, message, *, channel, delivery, now) -> bytes:
        return body_text(message).encode()

    def headers(self, message, *, channel, delivery, now, body) -> dict[str, str]:
        return headers(message, channel)
