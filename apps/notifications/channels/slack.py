"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat, Zulip's Slack endpoint).

`text` carries the whole message with Slack's `<url|label>` links: Slack shows it in
notifications, and Mattermost (which ignores `blocks` and translates these links to Markdown)
shows it as the post. `blocks` is Slack's Block Kit rendering, with the actions as buttons.
"""

import json

from ..message import Item, Message
from .http import HTTPSender

MAX_ITEMS_WITH_BLOCKS = 9  # up to 5 blocks each; Slack allows 50 blocks per message
MAX_BODY_TAIL = 1200
MAX_TEXT = 15_000


def escape(text: str) -> str:
    """Slack's three control characters; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    return f"<{url}|{escape(label).replace('|', '¦')}>"


def facts(item: Item) -> list[str]:
    lines = [f"*Why:* {escape(item.why)}", f"*Severity:* {item.severity}"]
    if item.expected_at:
        lines.append(f"*Expected at:* {item.expected_at}")
    lines.append(f"*Last ping at:* {item.last_ping_at or 'never'}")
    if item.exit_status is not None:
        lines.append(f"*Exit status:* {item.exit_status}")
    if item.duration_text:
        lines.append(f"*Run duration:* {item.duration_text}")
    if item.run_id:
        lines.append(f"*Run id:* {item.run_id}")
    lines.append(f"*Tags:* {escape(', '.join(item.tags)) or '-'}")
    return lines


def headline(item: Item) -> str:
    name = link(item.check_url, item.label)
    if item.event == "resolved":
        by = f" ({escape(item.resolved_by)})" if item.resolved_by else ""
        return f"{name} is *RESOLVED*: {escape(item.resolution or 'resolved')}{by}"
    if item.event == "acknowledged":
        by = f" by {escape(item.acknowledged_by)}" if item.acknowledged_by else ""
        return f"{name} was *acknowledged*{by}"
    return f"{name} is *{item.headline}* ({escape(item.incident_kind_label)})"


def tail(item: Item) -> str:
    if not item.body_tail or not item.is_alert:
        return ""
    text = item.body_tail[-MAX_BODY_TAIL:].replace("```", "'''")
    return f"*Last lines of the output:*\n```{escape(text)}```"


def item_text(item: Item) -> str:
    parts = [headline(item)]
    if item.is_alert:
        parts.extend(facts(item))
    if output := tail(item):
        parts.append(output)
    links = [link(item.incident_url, "Incident"), link(item.check_url, "Check")]
    links += [link(action.url, action.label) for action in item.actions]
    parts.append(" · ".join(links))
    return "\n".join(parts)


def item_blocks(item: Item) -> list[dict]:
    section = "\n".join([headline(item), *(facts(item) if item.is_alert else [])])
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": section[:3000]}}]
    if output := tail(item):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": output}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{link(item.incident_url, 'Incident')} · "
                    f"{link(item.check_url, 'Check')} · opened "
                    f"{item.opened_at:%Y-%m-%d %H:%M:%S} UTC",
                }
            ],
        }
    )
    if item.actions:
        buttons = []
        for action in item.actions:
            button = {
                "type": "button",
                "text": {"type": "plain_text", "text": action.label},
                "url": action.url,
                "action_id": f"{action.name}-{item.incident_id}",
            }
            if action.name == "acknowledge":
                button["style"] = "primary"
            buttons.append(button)
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def more_line(rest: list[Item], budget: int = 2900) -> str:
    """ "…and 31 more: <link>, <link>, … and 12 others", cut between links, never inside one."""
    links, used = [], 0
    for item in rest:
        piece = link(item.incident_url, item.label)
        if used + len(piece) + 2 > budget:
            break
        links.append(piece)
        used += len(piece) + 2
    others = len(rest) - len(links)
    tail = f" and {others} others" if others else ""
    return f"…and {len(rest)} more: {', '.join(links)}{tail}"


def payload(message: Message) -> dict:
    if message.is_test:
        text = f"Test notification from Tocsin for {escape(message.team_name)}: this channel works."
        return {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }
    summary = escape(message.summary)
    detailed, rest = message.items[:MAX_ITEMS_WITH_BLOCKS], message.items[MAX_ITEMS_WITH_BLOCKS:]
    parts = [f"*{summary}*", *(item_text(item) for item in detailed)]
    if rest:
        parts.append(more_line(rest))
    # Mattermost splits posts longer than 16,383 characters and Slack cuts text at 40,000.
    text = "\n\n".join(parts)[:MAX_TEXT]
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.summary[:150]}}
    ]
    for item in message.items[:MAX_ITEMS_WITH_BLOCKS]:
        blocks.append({"type": "divider"})
        blocks.extend(item_blocks(item))
    if rest:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more_line(rest)}})
    return {"text": text, "blocks": blocks}


class Slack(HTTPSender):
    content_type = "application/json"

    def body(self, message, *, channel, delivery, now) -> bytes:
        return json.dumps(payload(message)).encode()
