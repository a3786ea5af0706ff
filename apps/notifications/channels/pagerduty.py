"""PagerDuty, through the Events API v2: the PagerDuty incident follows Tocsin's.

    Tocsin event                                   Events API v2 (POST /v2/enqueue)
    down, escalation, reminder, re-triggered,  ->  event_action "trigger", with the payload
    unsilenced                                     (summary, source, severity, details, links)
    acknowledged                               ->  event_action "acknowledge"
    resolved                                   ->  event_action "resolve"

Every event of one Tocsin incident carries the same `dedup_key`, so PagerDuty folds repeated
triggers (reminders, escalation steps, a retried delivery) into one alert, and the acknowledge
and resolve events reach that alert. The routing key (the service's integration key) is in
the body; the Events API takes no other authentication. PagerDuty answers 202 when it accepts
an event, 400 for an invalid one (permanent) and 429 when the routing key is throttled.
"""

import json

from django.conf import settings

from ..message import Item, Message
from ..models import Channel, Delivery
from .facts import cut, human_time, item_facts, output_tail, test_text
from .http import HTTPSender, Request

MAX_SUMMARY = 1024
MAX_OUTPUT = 2000
# Tocsin's severities are PagerDuty's own names (it also has "error", which Tocsin has not).
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
ACTIONS = {"acknowledged": "acknowledge", "resolved": "resolve"}


def dedup_key(incident_id: int) -> str:
    return f"tocsin-incident-{incident_id}"


def trigger_payload(item: Item) -> dict:
    details = dict(item_facts(item, "UTC"))
    if output := output_tail(item, MAX_OUTPUT):
        details["Last lines of the output"] = output
    details["Check"] = item.check_url
    details["Incident"] = item.incident_url
    return {
        "summary": cut(f"{item.label} is {item.headline}: {item.why}", MAX_SUMMARY),
        "source": item.label,
        "severity": SEVERITY.get(item.severity, "warning"),
        "timestamp": item.opened_at.isoformat(),
        "component": item.check_name,
        "group": item.environment or None,
        "class": item.incident_kind_label,
        "custom_details": details,
    }


def event(item: Item, *, routing_key: str) -> dict:
    action = ACTIONS.get(item.event, "trigger")
    body = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(item.incident_id),
    }
    if action != "trigger":
        return body
    links = [
        {"href": item.incident_url, "text": "Incident in Tocsin"},
        {"href": item.check_url, "text": f"Check {item.label} in Tocsin"},
    ]
    # Acknowledging or resolving through these links acts in Tocsin, which then tells
    # PagerDuty: both sides stay in step.
    links += [
        {"href": one_click.url, "text": f"{one_click.label} in Tocsin"}
        for one_click in item.actions
        if one_click.name in ("acknowledge", "resolve")
    ]
    return {
        **body,
        "payload": {k: v for k, v in trigger_payload(item).items() if v is not None},
        "links": links,
        "client": "Tocsin",
        "client_url": item.incident_url,
    }


def test_events(message: Message, *, routing_key: str, delivery_id, now) -> list[dict]:
    """A test opens an alert of severity info and resolves it at once: it proves the key
    works without leaving an incident open."""
    key = f"tocsin-test-{delivery_id}"
    trigger = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": test_text(message, "PagerDuty service"),
            "source": "Tocsin",
            "severity": "info",
            "timestamp": now.isoformat(),
            "custom_details": {"Sent": human_time(now, "UTC")},
        },
        "client": "Tocsin",
        "client_url": settings.SITE_URL,
    }
    resolve = {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    return [trigger, resolve]


class PagerDuty(HTTPSender):
    content_type = "application/json"

    def requests(
        self, message: Message, *, channel: Channel, delivery: Delivery, now
    ) -> list[Request]:
        routing_key = channel.config.get("routing_key", "")
        if message.is_test:
            events = test_events(message, routing_key=routing_key, delivery_id=delivery.id, now=now)
        else:
            # The items are in order of the events (per incident), so an acknowledgment that
            # shares a message with its trigger reaches PagerDuty after it.
            events = [event(item, routing_key=routing_key) for item in message.items]
        url = f"{settings.PAGERDUTY_EVENTS_URL}/v2/enqueue"
        headers = {"Content-Type": self.content_type, "Accept": "application/json"}
        return [Request(url, json.dumps(e).encode(), headers) for e in events]
