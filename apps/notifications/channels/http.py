"""The base of every channel kind that POSTs one HTTP request per message.

A kind says what it sends (`content_type`, `body`, `headers`); the base sends it through the
guarded outbound client (apps/notifications/outbound.py: the private-address check on every
connection, OUTBOUND_TIMEOUT) and turns the client's errors into DeliveryErrors that keep their
verdict (permanent or not) and the receiver's HTTP status. A new kind (PagerDuty, Telegram, ...)
is a subclass with those three parts, registered in channels/registry.py:

    class PagerDuty(HTTPSender):
        content_type = "application/json"

        def body(self, message, *, channel, delivery, now):
            return json.dumps({"routing_key": channel.config["key"], ...}).encode()
"""

from datetime import datetime

from django.conf import settings

from ..message import Message
from ..models import Channel, Delivery
from ..outbound import ConnectionPool, OutboundError, post
from . import DeliveryError, SendOutcome


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

    def send(
        self,
        message: Message,
        *,
        channel: Channel,
        delivery: Delivery,
        now: datetime,
        client: ConnectionPool | None = None,
    ) -> SendOutcome:
        """POST the message. `client` shares keep-alive connections between the sends of one
        delivery run; without it the request has a connection of its own. Raises
        DeliveryError."""
        body = self.body(message, channel=channel, delivery=delivery, now=now)
        headers = {
            "Content-Type": self.content_type,
            **self.headers(message, channel=channel, delivery=delivery, now=now, body=body),
        }
        return post_payload(self.url(channel), body=body, headers=headers, client=client)


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
        raise DeliveryError(str(exc), permanent=exc.permanent, status=exc.status) from None
    return SendOutcome(status=response.status)
