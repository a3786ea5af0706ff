"""Which sender handles each channel kind. Adding a kind: a sender (an HTTPSender subclass for
HTTP kinds, see channels/http.py), a line here, a Channel.Kind choice and its form fields
(forms.KINDS)."""

from ..models import Channel
from .discord import Discord
from .email import EmailChannel
from .http import HTTPSender
from .ntfy import Ntfy
from .opsgenie import Opsgenie
from .pagerduty import PagerDuty
from .pushover import Pushover
from .slack import Slack
from .sms import TwilioSMS
from .teams import Teams
from .telegram import Telegram
from .webhook import Webhook

SENDERS: dict[str, HTTPSender | EmailChannel] = {
    Channel.Kind.EMAIL: EmailChannel(),
    Channel.Kind.WEBHOOK: Webhook(),
    Channel.Kind.SLACK: Slack(),
    Channel.Kind.NTFY: Ntfy(),
    Channel.Kind.PAGERDUTY: PagerDuty(),
    Channel.Kind.OPSGENIE: Opsgenie(),
    Channel.Kind.TELEGRAM: Telegram(),
    Channel.Kind.DISCORD: Discord(),
    Channel.Kind.TEAMS: Teams(),
    Channel.Kind.PUSHOVER: Pushover(),
    Channel.Kind.SMS: TwilioSMS(),
}
