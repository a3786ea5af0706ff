"""SMS through Twilio's Messages API:

    POST /2010-04-01/Accounts/<Account SID>/Messages.json
    Authorization: Basic base64(<Account SID>:<Auth Token>)
    To=<E.164 number>&From=<E.164 number>&Body=...   (or MessagingServiceSid=MG... for From)

A text is short (one or two segments): what happened to which check, and a link to the incident
(or to the incidents page for a group). Replies are not read: acknowledging is done through the
link. Twilio answers 201 Created; 400 for a bad number (permanent), 401 for a wrong SID or
token, 429 when the account sends too fast.
"""

import base64
from urllib.parse import quote, urlencode

from django.conf import settings

from ..message import Message
from ..models import Channel, Delivery
from .facts import cut, item_headline
from .http import HTTPSender

MAX_BODY = 320  # two SMS segments of GSM-7, or five of UCS-2
MESSAGING_SERVICE_PREFIX = "MG"


def sms_text(message: Message) -> str:
    if message.is_test:
        return cut(f"Tocsin: test message for {message.team_name}. This number gets alerts.", 160)
    if len(message.items) == 1:
        item = message.items[0]
        what = item_headline(item)
        if item.is_alert:
            what += f" ({item.incident_kind_label}, {item.severity})"
        link = item.incident_url
    else:
        what, link = message.summary, f"{settings.SITE_URL}/incidents/"
    # The link is never cut: without it the text is only half useful.
    room = MAX_BODY - len(link) - len("Tocsin: ") - 1
    return f"Tocsin: {cut(what, max(room, 20))} {link}"


def basic_auth(account_sid: str, auth_token: str) -> str:
    return "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()


class TwilioSMS(HTTPSender):
    content_type = "application/x-www-form-urlencoded"

    def url(self, channel: Channel) -> str:
        sid = quote(channel.config.get("account_sid", ""), safe="")
        return f"{settings.TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Messages.json"

    def body(self, message: Message, *, channel: Channel, delivery: Delivery, now) -> bytes:
        sender = channel.config.get("from_number", "")
        from_field = (
            "MessagingServiceSid" if sender.startswith(MESSAGING_SERVICE_PREFIX) else "From"
        )
        fields = {"To": channel.config.get("to_number", ""), from_field: sender}
        return urlencode({**fields, "Body": sms_text(message)}).encode()

    def headers(self, message, *, channel, delivery, now, body) -> dict[str, str]:
        config = channel.config
        return {
            "Authorization": basic_auth(config.get("account_sid", ""), config.get("auth_token", ""))
        }
