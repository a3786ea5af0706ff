"""Generic webhook: the message as JSON, signed.

Signature: `X-Tocsin-Signature: sha256=<hex>` is HMAC-SHA256, keyed with the channel's secret,
over `<X-Tocsin-Timestamp>.<raw body>`. A receiver recomputes it, compares in constant time and
refuses timestamps older than a few minutes, so a captured request cannot be replayed later.
"""

import hashlib
import hmac
import json
from datetime import datetime

from ..message import Message
from ..models import Channel, Delivery
from . import SendOutcome
from .http import post_payload

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


def send(message: Message, *, channel: Channel, delivery: Delivery, now: datetime) -> SendOutcome:
    body = json.dumps(payload(message), separators=(",", ":")).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        # Custom headers first: the protocol's own headers always win.
        **channel.config.get("headers", {}),
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(channel.secret, timestamp, body),
        DELIVERY_HEADER: str(delivery.id),
    }
    return post_payload(channel.config["url"], body=body, headers=headers)
