"""Generic webhook: the message as JSON, signed.

Signature: `X-Tocsin-Signature: sha256=<hex>` is HMAC-SHA256, keyed with the channel's secret,
over `<X-Tocsin-Timestamp>.<raw body>`. A receiver recomputes it, compares in constant time and
refuses timestamps older than a few minutes, so a captured request cannot be replayed later.
"""

import hashlib
import hmac
import json

from ..message import Message
from .http import HTTPSender

SIGNATURE_HEADER = "X-Tocsin-Signature"
TIMESTAMP_HEADER = "X-Tocsin-Timestamp"
DELIVERY_HEADER = "X-Tocsin-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def payload(message: Message) -> dict:
    return {
        "version": 1,
        "type": "test" if message.is_test else "notification",
        "delivery_id": message.delivery_id,
        "team": message.team_name,
        "summary": message.summary,
        "count": len(message.items),
        "incidents": [item.as_json() for item in message.items],
    }


class Webhook(HTTPSender):
    content_type = "application/json"

    def body(self, message, *, channel, delivery, now) -> bytes:
        return json.dumps(payload(message), separators=(",", ":")).encode()

    def headers(self, message, *, channel, delivery, now, body) -> dict[str, str]:
        timestamp = str(int(now.timestamp()))
        return {
            # Custom headers first: the protocol's own headers always win.
            **channel.config.get("headers", {}),
            "Content-Type": self.content_type,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(channel.secret, timestamp, body),
            DELIVERY_HEADER: str(delivery.id),
        }
