"""Discord, through a channel's webhook URL (https://discord.com/api/webhooks/<id>/<token>).

One message: `content` is the summary line, each incident event an embed (title linking to the
incident, the facts as fields, the output and the action links in the description). Discord
limits a message to 10 embeds and 6000 characters across them; embeds are added while they
fit and the rest are counted in `content`. Mentions are switched off (`allowed_mentions`), so a
check named "@everyone" pings nobody; Markdown in names is escaped. Discord answers 204, or 200
with ?wait=true; 429 with Retry-After when the webhook is rate limited.
"""

import json
import re

from ..message import Item, Message
from ..models import Channel, Delivery
from .facts import cut, human_time, item_facts, item_headline, output_tail, test_text
from .http import HTTPSender

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBEDS_TOTAL = 6000
MAX_DESCRIPTION = 4096
MAX_FIELD_VALUE = 1024
MAX_TITLE = 256
MAX_OUTPUT = 800
COLORS = {"resolved": 0x2EB67D, "acknowledged": 0xECB22E}
ALERT_COLOR = 0xE01E5A
MARKDOWN = re.compile(r"([\\*_~`|>\[\]()#-])")


def escape(text: str) -> str:
    """Discord Markdown shown literally."""
    return MARKDOWN.sub(r"\\\1", text)


def link(url: str, label: str) -> str:
    return f"[{escape(label)}]({url})"


def embed(item: Item, zone: str) -> dict:
    parts = []
    if output := output_tail(item, MAX_OUTPUT):
        parts.append("```\n" + output.replace("```", "'''") + "\n```")
    links = [link(item.incident_url, "Incident"), link(item.check_url, "Check")]
    links += [link(action.url, action.label) for action in item.actions]
    parts.append(" · ".join(links))
    return {
        "title": cut(item_headline(item), MAX_TITLE),
        "url": item.incident_url,
        "color": COLORS.get(item.event, ALERT_COLOR),
        "description": cut("\n".join(parts), MAX_DESCRIPTION),
        "fields": [
            {"name": label, "value": cut(value or "-", MAX_FIELD_VALUE), "inline": len(value) < 40}
            for label, value in item_facts(item, zone)
        ][:25],
        "timestamp": item.opened_at.isoformat(),
    }


def embed_size(value: dict) -> int:
    """What Discord counts against the 6000 characters: titles, descriptions, field names and
    values, footers."""
    fields = sum(len(f["name"]) + len(f["value"]) for f in value.get("fields", []))
    return len(value.get("title", "")) + len(value.get("description", "")) + fields


def payload(message: Message, now) -> dict:
    base = {"username": "Tocsin", "allowed_mentions": {"parse": []}}
    if message.is_test:
        text = f"{test_text(message, 'channel')} ({human_time(now, message.timezone)})"
        return {**base, "content": escape(text)}
    embeds, used = [], 0
    for item in message.items:
        candidate = embed(item, message.timezone)
        size = embed_size(candidate)
        if len(embeds) == MAX_EMBEDS or used + size > MAX_EMBEDS_TOTAL:
            break
        embeds.append(candidate)
        used += size
    content = escape(message.summary)
    if left_out := len(message.items) - len(embeds):
        content += f"\n…and {left_out} more (see the incidents page)."
    return {**base, "content": cut(content, MAX_CONTENT), "embeds": embeds}


class Discord(HTTPSender):
    content_type = "application/json"

    def body(self, message: Message, *, channel: Channel, delivery: Delivery, now) -> bytes:
        return json.dumps(payload(message, now)).encode()
