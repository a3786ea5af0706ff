"""Opsgenie, through its Alert API: the Opsgenie alert follows Tocsin's incident.

    Tocsin event                          Alert API (Authorization: GenieKey <API key>)
    down, escalation, reminder, ...  ->   POST /v2/alerts                    (create)
    acknowledged                     ->   POST /v2/alerts/<alias>/acknowledge?identifierType=alias
    resolved                         ->   POST /v2/alerts/<alias>/close?identifierType=alias

The alias is the same for every event of one Tocsin incident, so Opsgenie folds repeated creates
(reminders, escalation steps, a retried delivery) into the open alert (its count goes up) and
the acknowledge and close requests find it. Accounts in the EU region have their own API host
(OPSGENIE_EU_API_URL). Opsgenie answers 202 for an accepted request (processed asynchronously),
422 for an invalid one, 401/403 for a wrong key, 429 when throttled.
"""

import json
from urllib.parse import quote

from django.conf import settings

from ..message import Item, Message
from ..models import Channel, Delivery
from .facts import cut, human_time, item_facts, output_tail, test_text
from .http import HTTPSender, Request

MAX_MESSAGE = 130
MAX_DESCRIPTION = 15_000
MAX_TAG = 50
MAX_DETAIL_VALUE = 8000
PRIORITY = {"critical": "P1", "warning": "P3", "info": "P5"}
SOURCE = "Tocsin"


def alias(incident_id: int) -> str:
    return f"tocsin-incident-{incident_id}"


def base_url(channel: Channel) -> str:
    if channel.config.get("region") == "eu":
        return settings.OPSGENIE_EU_API_URL
    return settings.OPSGENIE_API_URL


def description(item: Item) -> str:
    lines = [f"{label}: {value}" for label, value in item_facts(item, "UTC")]
    if output := output_tail(item, 4000):
        lines += ["", "Last lines of the output:", output]
    lines += ["", f"Incident: {item.incident_url}", f"Check: {item.check_url}"]
    lines += [f"{action.label}: {action.url}" for action in item.actions]
    return cut("\n".join(lines), MAX_DESCRIPTION)


def create_body(item: Item) -> dict:
    tags = ["tocsin", *item.tags, *([item.environment] if item.environment else [])]
    details = {label: cut(value, MAX_DETAIL_VALUE) for label, value in item_facts(item, "UTC")}
    details |= {"Incident": item.incident_url, "Check": item.check_url}
    return {
        "message": cut(f"{item.label} is {item.headline}", MAX_MESSAGE),
        "alias": alias(item.incident_id),
        "description": description(item),
        "priority": PRIORITY.get(item.severity, "P3"),
        "tags": [cut(tag, MAX_TAG) for tag in dict.fromkeys(tags)][:20],
        "details": details,
        "entity": cut(item.label, 512),
        "source": SOURCE,
    }


def follow_up_body(item: Item) -> dict:
    if item.event == "acknowledged":
        user = item.acknowledged_by or SOURCE
        note = f"Acknowledged in Tocsin by {user}. {item.incident_url}"
    else:
        user = item.resolved_by or SOURCE
        note = f"Resolved in Tocsin ({item.resolution or 'resolved'}). {item.incident_url}"
    return {"user": cut(user, 100), "source": SOURCE, "note": cut(note, 25_000)}


def alert_request(item: Item, *, base: str, headers: dict) -> Request:
    if item.event in ("acknowledged", "resolved"):
        verb = "acknowledge" if item.event == "acknowledged" else "close"
        url = f"{base}/v2/alerts/{quote(alias(item.incident_id), safe='')}/{verb}"
        body = follow_up_body(item)
        return Request(f"{url}?identifierType=alias", json.dumps(body).encode(), headers)
    return Request(f"{base}/v2/alerts", json.dumps(create_body(item)).encode(), headers)


def test_requests(message: Message, *, base: str, headers: dict, delivery_id, now) -> list:
    """A test creates an alert of priority P5 and closes it at once."""
    key = f"tocsin-test-{delivery_id}"
    create = {
        "message": cut(test_text(message, "Opsgenie integration"), MAX_MESSAGE),
        "alias": key,
        "description": f"Sent {human_time(now, 'UTC')} from {settings.SITE_URL}",
        "priority": "P5",
        "tags": ["tocsin", "test"],
        "source": SOURCE,
    }
    close = {"source": SOURCE, "note": "Test notification: closed at once."}
    return [
        Request(f"{base}/v2/alerts", json.dumps(create).encode(), headers),
        Request(
            f"{base}/v2/alerts/{key}/close?identifierType=alias",
            json.dumps(close).encode(),
            headers,
        ),
    ]


class Opsgenie(HTTPSender):
    content_type = "application/json"

    def requests(
        self, message: Message, *, channel: Channel, delivery: Delivery, now
    ) -> list[Request]:
        base = base_url(channel)
        headers = {
            "Content-Type": self.content_type,
            "Authorization": f"GenieKey {channel.config.get('api_key', '')}",
        }
        if message.is_test:
            return test_requests(
                message, base=base, headers=headers, delivery_id=delivery.id, now=now
            )
        return [alert_request(item, base=base, headers=headers) for item in message.items]
