"""Credentials and settings of one channel per provider kind, shaped as each provider issues
them, for the integration tests (tests/notifications/test_integrations.py) and the API's
(tests/api/test_channel_kinds_api.py). The provider's API is the local fake receiver: every
base-URL setting points at it, under a path prefix of its own."""

ROUTING_KEY = "R0" + "0123456789" * 3  # PagerDuty: 32 characters
OPSGENIE_KEY = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
BOT_TOKEN = "123456789:AAE" + "kZ3xQ9vT" * 4
CHAT_ID = "-1001234567890"
DISCORD_TOKEN = "dIsCoRdToKeN" * 5
TEAMS_SIG = "TeAmSsIgNaTuRe0123456789abcdef"
PUSHOVER_USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
PUSHOVER_APP = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "fedcba9876543210" * 2
FROM_NUMBER, TO_NUMBER = "+15005550006", "+15551234567"

KINDS = ["pagerduty", "opsgenie", "telegram", "discord", "teams", "pushover", "sms"]

# What never appears again once written, per kind.
SECRETS = {
    "pagerduty": [ROUTING_KEY],
    "opsgenie": [OPSGENIE_KEY],
    "telegram": [BOT_TOKEN],
    "discord": [DISCORD_TOKEN],
    "teams": [TEAMS_SIG],
    "pushover": [PUSHOVER_USER, PUSHOVER_APP],
    "sms": [TWILIO_TOKEN],
}


def point_providers_at(settings, receiver) -> None:
    settings.PAGERDUTY_EVENTS_URL = receiver.url("/pd")
    settings.OPSGENIE_API_URL = receiver.url("/og-us")
    settings.OPSGENIE_EU_API_URL = receiver.url("/og-eu")
    settings.TELEGRAM_API_URL = receiver.url("/tg")
    settings.PUSHOVER_API_URL = receiver.url("/po")
    settings.TWILIO_API_URL = receiver.url("/tw")


def discord_url(base: str) -> str:
    return f"{base}/api/webhooks/4242/{DISCORD_TOKEN}"


def teams_url(base: str) -> str:
    return f"{base}/workflows/f00d/triggers/manual/paths/invoke?api-version=1&sig={TEAMS_SIG}"


def settings_of(kind: str, base: str) -> dict:
    """The settings of a `kind` channel as the form and the API take them; `base` is where
    Discord and Teams webhooks live (their URL is the channel's own)."""
    return {
        "pagerduty": {"routing_key": ROUTING_KEY},
        "opsgenie": {"api_key": OPSGENIE_KEY, "region": "eu"},
        "telegram": {"bot_token": BOT_TOKEN, "chat_id": CHAT_ID},
        "discord": {"url": discord_url(base)},
        "teams": {"url": teams_url(base)},
        "pushover": {
            "user_key": PUSHOVER_USER,
            "app_token": PUSHOVER_APP,
            "emergency_retry": 60,
            "emergency_expire": 3600,
        },
        "sms": {
            "account_sid": TWILIO_SID,
            "auth_token": TWILIO_TOKEN,
            "from_number": FROM_NUMBER,
            "to_number": TO_NUMBER,
        },
    }[kind]


def alert_path(kind: str) -> str:
    """Where a kind's alert goes on the fake receiver."""
    return {
        "pagerduty": "/pd/v2/enqueue",
        "opsgenie": "/og-eu/v2/alerts",
        "telegram": f"/tg/bot{BOT_TOKEN}/sendMessage",
        "discord": f"/api/webhooks/4242/{DISCORD_TOKEN}",
        "teams": f"/workflows/f00d/triggers/manual/paths/invoke?api-version=1&sig={TEAMS_SIG}",
        "pushover": "/po/1/messages.json",
        "sms": f"/tw/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
    }[kind]
