"""POSTing a channel's payload through the guarded outbound client."""

from django.conf import settings

from ..outbound import OutboundError, post
from . import DeliveryError, SendOutcome


def post_payload(url: str, *, body: bytes, headers: dict[str, str]) -> SendOutcome:
    try:
        response = post(url, body=body, headers=headers, timeout=settings.OUTBOUND_TIMEOUT)
    except OutboundError as exc:
        raise DeliveryError(str(exc), permanent=exc.permanent, status=exc.status) from None
    return SendOutcome(status=response.status)
