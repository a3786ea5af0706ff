"""Microsoft Teams, through a Workflows webhook (the "Post to a channel when a webhook request is
received" flow; Office 365 connectors are retired). The flow takes a message whose attachment
is an Adaptive Card:

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null, "content": {AdaptiveCard 1.4}}]}

The card has the summary, then per incident event a headline, its facts (FactSet), the end of
the output, and its links as Action.OpenUrl buttons. Teams takes messages up to about 28 KB:
at most MAX_ITEMS events, and as many as fit in MAX_CARD_BYTES, are detailed; the rest are
counted. The flow answers 202 Accepted.
"""

import json

from ..message import Item, Message
from ..models import Channel, Delivery
from .facts import cut, human_time, item_facts, item_headline, output_tail, test_text
from .http import HTTPSender

MAX_ITEMS = 10
# Teams refuses a message over about 28 KB, envelope included: the events' part stays below.
MAX_CARD_BYTES = 24_000
MAX_OUTPUT = 1000
COLORS = {"resolved": "Good", "acknowledged": "Warning"}


def text_block(text: str, **style) -> dict:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def item_elements(item: Item, zone: str) -> list[dict]:
    elements = [
        text_block(
            item_headline(item),
            weight="Bolder",
            size="Medium",
            color=COLORS.get(item.event, "Attention"),
            separator=True,
            spacing="Medium",
        ),
        {
            "type": "FactSet",
            "facts": [{"title": label, "value": value} for label, value in item_facts(item, zone)],
        },
    ]
    if output := output_tail(item, MAX_OUTPUT):
        elements.append(text_block(output, fontType="Monospace", size="Small"))
    actions = [{"type": "Action.OpenUrl", "title": "Incident", "url": item.incident_url}]
    actions.append({"type": "Action.OpenUrl", "title": "Check", "url": item.check_url})
    actions += [
        {"type": "Action.OpenUrl", "title": action.label, "url": action.url}
        for action in item.actions
    ]
    elements.append({"type": "ActionSet", "actions": actions})
    return elements


def card(message: Message, now) -> dict:
    if message.is_test:
        body = [
            text_block(test_text(message, "channel"), weight="Bolder"),
            text_block(human_time(now, message.timezone), isSubtle=True),
        ]
    else:
        body = [text_block(cut(message.title, 300), weight="Bolder", size="Large")]
        shown, used = 0, 0
        for item in message.items[:MAX_ITEMS]:
            elements = item_elements(item, message.timezone)
            size = len(json.dumps(elements).encode())
            if shown and used + size > MAX_CARD_BYTES:
                break
            body += elements
            shown, used = shown + 1, used + size
        if left_out := len(message.items) - shown:
            body.append(text_block(f"…and {left_out} more (see the incidents page)."))
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }


def payload(message: Message, now) -> dict:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card(message, now),
            }
        ],
    }


class Teams(HTTPSender):
    content_type = "application/json"

    def body(self, message: Message, *, channel: Channel, delivery: Delivery, now) -> bytes:
        return json.dumps(payload(message, now)).encode()
