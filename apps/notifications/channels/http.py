"""The base of every channel kind that POSTs one HTTP request per message.

A kind says what it sends (`content_type`, `body`, `headers`); the base sends it through the
guarded outbound client (apps/notifications/outbound.py: the private-address check on every
connection, OUTBOUND_TIMEOUT) and turns the client's errors into DeliveryErrors that keep their
verdict (permanent or not) and the receiver's HTTP status. A new kind (PagerDuty, Telegram, ...)
is a subclass with those three parts, registered in channels/registry.py:

    class Discord(HTTPSender):
        content_type = "application/json"

        def body(self, message, *, channel, delivery, now):
            return json.dumps({"content": message.summary, ...}).encode()

A kind whose message takes several requests (PagerDuty and Opsgenie: one event per incident;
Pushover: cancelling an emergency's retries before telling of the recovery) overrides
`requests` instead. They are sent in order; the first failure stops the attempt, and the retry
sends them all again, so each request must be one that the provider takes twice without harm
(an event with the same dedup key, an alert with the same alias, a cancel of what is gone).
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from ..message import Message
from ..models import Channel, Delivery
from ..outbound import ConnectionPool, OutboundError, post
from . import DeliveryError, SendOutcome


@dataclass(frozen=True)
class Request:
    """One POST: where, what, and the headers besides User-Agent and Content-Length."""

    url: str
    body: bytes
    headers: dict[str, str]


class HTTPSender:
    content_type = "application/json"

    def url(self, channel: Channel) -> str:
        return channel.config["url"]

    def body(
        self, message: Message, *, channel: Channel, delivery: Delivery, now: datetime
    ) -> bytes:
        raise NotImplementedError

    def headers(
        self, message: Message, *, channel: Channel, delivery: Delivery, now: datetime, body: bytes
    ) -> dict[str, str]:
        """Headers besides Content-Type (which a kind may still override here)."""
        return {}

    def requests(
        self, message: Message, *, channel: Channel, delivery: Delivery, now: datetime
    ) -> list[Request]:
        """The requests that carry the message, in order: by default one, from `url`, `body`
        and `headers`."""
        body = self.body(message, channel=channel, delivery=delivery, now=now)
        headers = {
            "Content-Type": self.content_type,
            **self.headers(message, channel=channel, delivery=delivery, now=now, body=body),
        }
        return [Request(self.url(channel), body, headers)]

    def send(
        self,
        message: Message,
        *,
        channel: Channel,
        delivery: Delivery,
        now: datetime,
        client: ConnectionPool | None = None,
    ) -> SendOutcome:
        """POST the message's requests in order. `client` shares keep-alive connections
        between the sends of one delivery run; without it each request has a connection of its
        own. Returns the last answer's outcome; raises DeliveryError at the first failure."""
        outcome = SendOutcome()
        for request in self.requests(message, channel=channel, delivery=delivery, now=now):
            outcome = post_payload(
                request.url, body=request.body, headers=request.headers, client=client
            )
        return outcome


def post_payload(
    url: str, *, body: bytes, headers: dict[str, str], client: ConnectionPool | None = None
) -> SendOutcome:
    try:
        if client is None:
            response = post(url, body=body, headers=headers, timeout=settings.OUTBOUND_TIMEOUT)
        else:
            response = client.post(
                url, body=body, headers=headers, timeout=settings.OUTBOUND_TIMEOUT
            )
    except OutboundError as exc:
        raise DeliveryError(
            str(exc), permanent=exc.permanent, status=exc.status, retry_after=exc.retry_after
        ) from None
    return SendOutcome(status=response.status)
