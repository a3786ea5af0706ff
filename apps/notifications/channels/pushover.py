"""Pushover: POST /1/messages.json (form-encoded: token, user, title, message, url, priority).

Priorities follow the incident's severity: critical is an emergency (priority 2), repeated
every `emergency_retry` seconds until someone acknowledges it in the Pushover app or
`emergency_expire` seconds pass; warning is high (1), info normal (0), and acknowledgments and
recoveries are normal. An emergency is tagged with its incident, so that when the incident is
acknowledged or resolved in Tocsin its repeats are cancelled first
(POST /1/receipts/cancel_by_tag/<tag>.json), then the follow-up is sent.

The message is at most 1024 characters of Pushover's HTML (<b>, <a href>): the headline and
the Acknowledge and Resolve links always, then as many facts as fit. The supplementary URL
opens the incident. Pushover answers 200 with {"status": 1}, 4xx with {"status": 0, "errors":
[...]} for bad input or a bad key (permanent), 429 when the application is over its limit.
"""

from html import escape
from urllib.parse import quote, urlencode

from django.conf import settings

from ..message import Item, Message
from ..models import Channel, Delivery
from .facts import cut, item_facts, item_headline, test_text
from .http import HTTPSender, Request

MAX_MESSAGE = 1024
MAX_TITLE = 250
MAX_URL = 512
PRIORITY = {"critical": 2, "warning": 1, "info": 0}
EMERGENCY = 2
DEFAULT_RETRY, DEFAULT_EXPIRE = 60, 3600  # seconds; Pushover: retry >= 30, expire <= 10800


def incident_tag(incident_id: int) -> str:
    return f"tocsin-incident-{incident_id}"


def link(url: str, label: str) -> str:
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def item_links(item: Item) -> str:
    links = [link(a.url, a.label) for a in item.actions if a.name in ("acknowledge", "resolve")]
    return " · ".join([*links, link(item.incident_url, "Incident")])


def message_html(message: Message) -> str:
    """One event: its headline and facts, then its links. A group: a line per event, then a
    link to the incidents page. The links always stay; lines that do not fit are left out from
    the end."""
    if len(message.items) == 1:
        item = message.items[0]
        tail = item_links(item)
        lines = [f"<b>{escape(item_headline(item))}</b>"]
        lines += [f"<b>{escape(k)}:</b> {escape(v)}" for k, v in item_facts(item, message.timezone)]
    else:
        tail = link(f"{settings.SITE_URL}/incidents/", "All incidents")
        lines = [
            f"<b>{escape(item_headline(item))}</b> {link(item.incident_url, '»')}"
            for item in message.items
        ]
    kept: list[str] = []
    for line in lines:
        if len("\n".join([*kept, line, tail])) > MAX_MESSAGE:
            break
        kept.append(line)
    return "\n".join([*kept, tail])


def priority(message: Message) -> int:
    severities = [item.severity for item in message.items if item.is_alert]
    return max((PRIORITY.get(s, 0) for s in severities), default=0)


def message_fields(message: Message, channel: Channel) -> dict:
    config = channel.config
    fields = {"token": config.get("app_token", ""), "user": config.get("user_key", "")}
    if config.get("device"):
        fields["device"] = config["device"]
    if message.is_test:
        return {**fields, "title": "Tocsin", "message": test_text(message, "Pushover app")}
    first = message.items[0]
    fields |= {
        "title": cut(message.title, MAX_TITLE),
        "message": message_html(message),
        "html": "1",
        "priority": str(priority(message)),
    }
    if len(first.incident_url) <= MAX_URL:
        fields |= {"url": first.incident_url, "url_title": "Open the incident"}
    if priority(message) == EMERGENCY:
        emergencies = [i for i in message.items if i.is_alert and i.severity == "critical"]
        fields |= {
            "retry": str(config.get("emergency_retry", DEFAULT_RETRY)),
            "expire": str(config.get("emergency_expire", DEFAULT_EXPIRE)),
            "tags": ",".join(dict.fromkeys(incident_tag(i.incident_id) for i in emergencies)),
        }
    return fields


def cancellations(message: Message) -> list[int]:
    """Incidents whose emergency repeats must stop: acknowledged or resolved critical ones."""
    ids = [
        item.incident_id
        for item in message.items
        if item.event in ("acknowledged", "resolved") and item.severity == "critical"
    ]
    return list(dict.fromkeys(ids))


class Pushover(HTTPSender):
    content_type = "application/x-www-form-urlencoded"

    def requests(
        self, message: Message, *, channel: Channel, delivery: Delivery, now
    ) -> list[Request]:
        headers = {"Content-Type": self.content_type}
        base = settings.PUSHOVER_API_URL
        token = urlencode({"token": channel.config.get("app_token", "")}).encode()
        requests = [
            Request(
                f"{base}/1/receipts/cancel_by_tag/{quote(incident_tag(incident_id))}.json",
                token,
                headers,
            )
            for incident_id in ([] if message.is_test else cancellations(message))
        ]
        body = urlencode(message_fields(message, channel)).encode()
        requests.append(Request(f"{base}/1/messages.json", body, headers))
        return requests
