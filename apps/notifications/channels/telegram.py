"""Telegram, through the Bot API: POST /bot<token>/sendMessage to a chat (a person, a group or
a channel the bot is in).

The text uses Telegram's HTML mode (<b>, <a href>, <pre>; everything else escaped), at most 4096
characters: items are added while they fit, the rest are counted. The action links are links
in the text rather than inline keyboard buttons: Telegram refuses a whole message whose button
URL it does not like (a SITE_URL on localhost or a LAN name), and a link in the text always
goes through. The bot token is part of the URL path, built at send time and never stored
elsewhere or logged (error messages carry the answer, not the URL).
"""

import json
import re
from html import escape

from django.conf import settings

from ..message import Item, Message
from ..models import Channel, Delivery
from .facts import human_time, item_facts, item_headline, output_tail, test_text
from .http import HTTPSender

MAX_TEXT = 4096
MAX_OUTPUT = 600
NUMERIC_CHAT_ID = re.compile(r"-?\d+")


def link(url: str, label: str) -> str:
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def item_html(item: Item, zone: str) -> str:
    lines = [f"<b>{escape(item_headline(item))}</b>"]
    lines += [f"<b>{escape(label)}:</b> {escape(value)}" for label, value in item_facts(item, zone)]
    if output := output_tail(item, MAX_OUTPUT):
        lines.append(f"<pre>{escape(output)}</pre>")
    links = [link(item.incident_url, "Incident"), link(item.check_url, "Check")]
    links += [link(action.url, action.label) for action in item.actions]
    lines.append(" · ".join(links))
    return "\n".join(lines)


def text(message: Message) -> str:
    if message.is_test:
        return escape(test_text(message, "chat"))
    header = f"<b>{escape(message.title)}</b>"
    blocks, used, left_out = [], len(header), 0
    for item in message.items:
        block = item_html(item, message.timezone)
        # Room is kept for the "…and N more" line; a block never gets cut (its tags would).
        if used + len(block) + 2 > MAX_TEXT - 60:
            left_out += 1
            continue
        blocks.append(block)
        used += len(block) + 2
    if not blocks:  # one item longer than a message: its headline and links only
        item = message.items[0]
        blocks.append(
            f"<b>{escape(item_headline(item))}</b>\n{link(item.incident_url, 'Incident')}"
        )
        left_out = len(message.items) - 1
    parts = [header, *blocks]
    if left_out:
        parts.append(f"…and {left_out} more: see {escape(settings.SITE_URL)}/incidents/")
    return "\n\n".join(parts)


def chat_id(value: str) -> int | str:
    """A numeric id as a number, a public channel's @username as it is."""
    return int(value) if NUMERIC_CHAT_ID.fullmatch(value) else value


class Telegram(HTTPSender):
    content_type = "application/json"

    def url(self, channel: Channel) -> str:
        return f"{settings.TELEGRAM_API_URL}/bot{channel.config.get('bot_token', '')}/sendMessage"

    def body(self, message: Message, *, channel: Channel, delivery: Delivery, now) -> bytes:
        payload = {
            "chat_id": chat_id(channel.config.get("chat_id", "")),
            "text": text(message),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if message.is_test:
            payload["text"] += f"\n{escape(human_time(now, message.timezone))}"
        return json.dumps(payload).encode()
