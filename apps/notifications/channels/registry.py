"""Which sender handles each channel kind. Adding a kind: a sender (an HTTPSender subclass for
HTTP kinds, see channels/http.py), a line here, a Channel.Kind choice and its form fields."""

from ..models import Channel
from .email import EmailChannel
from .http import HTTPSender
from .ntfy import Ntfy
from .slack import Slack
from .webhook import Webhook

SENDERS: dict[str, HTTPSender | EmailChannel] = {
    Channel.Kind.EMAIL: EmailChannel(),
    Channel.Kind.WEBHOOK: Webhook(),
    Channel.Kind.SLACK: Slack(),
    Channel.Kind.NTFY: Ntfy(),
}
