"""Channel and grouping forms. A channel URL must be http(s) and must not point at a private,
loopback or link-local address (checked on save, as delivery checks it again on every send);
custom webhook headers are parsed strictly so that nothing can smuggle a second header or
override the protocol's own."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from .models import Channel, TeamNotificationSettings
from .outbound import OutboundError, resolve_public

MAX_URL_LENGTH = 2000
MAX_HEADERS = 20
MAX_HEADER_VALUE = 1000
# RFC 9110 token characters: a header name is one token.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,100}$")
# Headers that belong to HTTP framing or to our signature: a custom header may not set them.
RESERVED_HEADERS = {
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "user-agent",
    "te",
    "trailer",
    "upgrade",
    "expect",
}
RESERVED_PREFIX = "x-tocsin-"


def validate_outbound_url(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_URL_LENGTH:
        raise ValidationError(f"The URL is too long (at most {MAX_URL_LENGTH} characters).")
    if any(ch in value for ch in "\r\n\t ") or not value.isprintable():
        raise ValidationError("The URL must not contain spaces or control characters.")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL with a host name.")
    if parts.username or parts.password:
        raise ValidationError("Put credentials in a header, not in the URL.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError("The URL's port is not a number between 0 and 65535.") from None
    try:
        resolve_public(parts.hostname, port)
    except OutboundError as exc:
        if exc.permanent:
            raise ValidationError(
                "This URL points at a private, loopback or link-local address, which Tocsin "
                "refuses to call (set OUTBOUND_ALLOW_PRIVATE to allow it)."
            ) from None
        raise ValidationError(f"The host name cannot be resolved: {exc}") from None
    return value


def parse_headers(text: str) -> dict[str, str]:
    """One "Name: value" per line. Raises ValidationError naming the first bad line."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not HEADER_NAME.match(name):
            raise ValidationError(f"Line {number}: write each header as “Name: value”.")
        if name.lower() in RESERVED_HEADERS or name.lower().startswith(RESERVED_PREFIX):
            raise ValidationError(f"Line {number}: {name} is set by Tocsin and cannot be changed.")
        if len(value) > MAX_HEADER_VALUE:
            raise ValidationError(f"Line {number}: the value is too long.")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or not value.isascii():
            raise ValidationError(
                f"Line {number}: header values must be printable ASCII (no control characters)."
            )
        if name.lower() in {n.lower() for n in headers}:
            raise ValidationError(f"Line {number}: {name} is given twice.")
        headers[name] = value
        if len(headers) > MAX_HEADERS:
            raise ValidationError(f"At most {MAX_HEADERS} headers.")
    return headers


def format_headers(headers: dict[str, str]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in headers.items())


Kind = Channel.Kind
# The settings of each kind, stored in Channel.config under these names.
CONFIG_BY_KIND: dict[str, tuple[str, ...]] = {
    Kind.EMAIL: ("address",),
    Kind.WEBHOOK: ("url", "headers"),
    Kind.SLACK: ("url",),
    Kind.NTFY: ("url", "token"),
    Kind.PAGERDUTY: ("routing_key",),
    Kind.OPSGENIE: ("api_key", "region"),
    Kind.TELEGRAM: ("bot_token", "chat_id"),
    Kind.DISCORD: ("url",),
    Kind.TEAMS: ("url",),
    Kind.PUSHOVER: ("user_key", "app_token", "device", "emergency_retry", "emergency_expire"),
    Kind.SMS: ("account_sid", "auth_token", "from_number", "to_number"),
}
# Settings that are credentials: written, never shown again (not on the edit form, the
# channel's page or in the API's answers). A Discord or Teams webhook URL carries its token.
SECRETS_BY_KIND: dict[str, tuple[str, ...]] = {
    Kind.NTFY: ("token",),
    Kind.PAGERDUTY: ("routing_key",),
    Kind.OPSGENIE: ("api_key",),
    Kind.TELEGRAM: ("bot_token",),
    Kind.DISCORD: ("url",),
    Kind.TEAMS: ("url",),
    Kind.PUSHOVER: ("user_key", "app_token"),
    Kind.SMS: ("auth_token",),
}
ALL_CONFIG_NAMES = tuple(dict.fromkeys(n for names in CONFIG_BY_KIND.values() for n in names))
EMERGENCY_RETRY_DEFAULT, EMERGENCY_EXPIRE_DEFAULT = 60, 3600
E164 = r"\+[1-9][0-9]{6,14}"


def is_secret(kind: str, name: str) -> bool:
    return name in SECRETS_BY_KIND.get(kind, ())


def _pattern(regex: str, message: str) -> RegexValidator:
    return RegexValidator(rf"\A(?:{regex})\Z", message)


class ChannelForm(forms.Form):
    """One form for every kind; `kind` decides which fields are shown and required.

    Secrets (SECRETS_BY_KIND) are password inputs that never show the stored value. On the
    dashboard's edit form (`blank_keeps_secrets`) a blank secret keeps the stored one; the API
    sends every value explicitly (it merges what a client left out itself)."""

    FIELDS_BY_KIND = {
        kind: ("name", *names, "is_enabled") for kind, names in CONFIG_BY_KIND.items()
    }

    name = forms.CharField(max_length=100)
    address = forms.EmailField(max_length=254, label="Email address")
    url = forms.CharField(max_length=MAX_URL_LENGTH + 100, label="URL")
    headers = forms.CharField(
        required=False,
        max_length=MAX_HEADERS * (MAX_HEADER_VALUE + 110),
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Custom headers",
        help_text="One “Name: value” per line, e.g. Authorization: Bearer …",
    )
    token = forms.CharField(
        required=False,
        max_length=200,
        label="Access token",
        help_text="For a protected ntfy topic (sent as Authorization: Bearer …).",
    )
    routing_key = forms.CharField(
        max_length=64,
        label="Integration key",
        help_text="The service's Events API v2 integration key (routing key): 32 characters.",
        validators=[_pattern("[A-Za-z0-9]{32}", "An integration key is 32 letters and digits.")],
    )
    api_key = forms.CharField(
        max_length=64,
        label="API key",
        help_text="The key of an Opsgenie API integration (sent as GenieKey).",
        validators=[
            _pattern(
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                "An Opsgenie API key looks like 01234567-89ab-cdef-0123-456789abcdef.",
            )
        ],
    )
    region = forms.ChoiceField(
        choices=[("us", "US (api.opsgenie.com)"), ("eu", "EU (api.eu.opsgenie.com)")],
        initial="us",
        label="Region",
    )
    bot_token = forms.CharField(
        max_length=100,
        label="Bot token",
        help_text="From @BotFather, like 123456789:AAE…",
        validators=[
            _pattern(
                "[0-9]{3,20}:[A-Za-z0-9_-]{30,60}",
                "A bot token looks like 123456789:AAE… (digits, a colon, then the key).",
            )
        ],
    )
    chat_id = forms.CharField(
        max_length=40,
        label="Chat id",
        help_text="A numeric chat id (groups start with -) or a public channel's @username.",
        validators=[
            _pattern(
                "-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}",
                "Enter a numeric chat id or a channel's @username.",
            )
        ],
    )
    user_key = forms.CharField(
        max_length=30,
        label="User or group key",
        validators=[_pattern("[A-Za-z0-9]{30}", "A Pushover key is 30 letters and digits.")],
    )
    app_token = forms.CharField(
        max_length=30,
        label="Application API token",
        validators=[_pattern("[A-Za-z0-9]{30}", "A Pushover token is 30 letters and digits.")],
    )
    device = forms.CharField(
        required=False,
        max_length=25,
        label="Device",
        help_text="Only this device of the user (blank: all of them).",
        validators=[_pattern("[A-Za-z0-9_-]{1,25}", "A device name is letters, digits, _ and -.")],
    )
    emergency_retry = forms.IntegerField(
        required=False,
        min_value=30,
        max_value=10800,
        initial=EMERGENCY_RETRY_DEFAULT,
        label="Critical: repeat every (seconds)",
        help_text="Critical incidents are emergencies, repeated until acknowledged in Pushover.",
    )
    emergency_expire = forms.IntegerField(
        required=False,
        min_value=30,
        max_value=10800,
        initial=EMERGENCY_EXPIRE_DEFAULT,
        label="Critical: stop repeating after (seconds)",
    )
    account_sid = forms.CharField(
        max_length=34,
        label="Account SID",
        validators=[_pattern("AC[0-9a-fA-F]{32}", "An Account SID is AC and 32 hex digits.")],
    )
    auth_token = forms.CharField(
        max_length=64,
        label="Auth token",
        validators=[_pattern("[A-Za-z0-9]{32}", "An auth token is 32 letters and digits.")],
    )
    from_number = forms.CharField(
        max_length=34,
        label="From",
        help_text="Your Twilio number (+15551234567) or a Messaging Service SID (MG…).",
        validators=[
            _pattern(
                f"{E164}|MG[0-9a-fA-F]{{32}}",
                "Enter a number in international format (+15551234567) or an MG… SID.",
            )
        ],
    )
    to_number = forms.CharField(
        max_length=16,
        label="To",
        help_text="The phone number that gets the texts, in international format.",
        validators=[_pattern(E164, "Enter a number in international format (+15551234567).")],
    )
    is_enabled = forms.BooleanField(required=False, initial=True, label="Enabled")

    URL_HELP = {
        Kind.WEBHOOK: "Tocsin POSTs JSON here, signed with this channel's secret.",
        Kind.SLACK: "A Slack or Mattermost incoming-webhook URL.",
        Kind.NTFY: "The topic URL, e.g. https://ntfy.sh/my-team-alerts or your own server.",
        Kind.DISCORD: "The channel's webhook URL (…/api/webhooks/<id>/<token>).",
        Kind.TEAMS: "The URL of a Workflows flow “Post to a channel when a webhook request is "
        "received”.",
    }

    def __init__(
        self,
        *args,
        kind: str,
        team,
        instance: Channel | None = None,
        blank_keeps_secrets: bool = True,
        **kwargs,
    ):
        if instance is not None and "initial" not in kwargs:
            config = instance.config
            initial = {"name": instance.name, "is_enabled": instance.is_enabled}
            for name in CONFIG_BY_KIND[kind]:
                if not is_secret(kind, name) and name in config:
                    value = config[name]
                    initial[name] = format_headers(value) if name == "headers" else value
            kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        self.kind, self.team, self.instance = kind, team, instance
        for name in list(self.fields):
            if name not in self.FIELDS_BY_KIND[kind]:
                del self.fields[name]
        if "url" in self.fields:
            self.fields["url"].help_text = self.URL_HELP[kind]
        # Secrets the channel has, which a blank field keeps.
        self.kept_secrets = {}
        for name in SECRETS_BY_KIND.get(kind, ()):
            field = self.fields[name]
            field.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
            stored = instance.config.get(name) if instance is not None else None
            if stored and blank_keeps_secrets:
                self.kept_secrets[name] = stored
                field.required = False
                field.help_text = (
                    f"{field.help_text} Stored and never shown; blank keeps it.".strip()
                )

    def _keeps(self, name: str, value) -> bool:
        return name in self.kept_secrets and value in ("", None)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Give the channel a name.")
        taken = Channel.objects.filter(team=self.team, name=name)
        if self.instance is not None:
            taken = taken.exclude(id=self.instance.id)
        if taken.exists():
            raise ValidationError("The team already has a channel with this name.")
        return name

    def clean_url(self):
        value = self.cleaned_data["url"]
        if self._keeps("url", value):
            return value
        url = validate_outbound_url(value)
        if self.kind == Kind.DISCORD and "/api/webhooks/" not in urlsplit(url).path:
            raise ValidationError("A Discord webhook URL looks like …/api/webhooks/<id>/<token>.")
        return url

    def clean_headers(self):
        return parse_headers(self.cleaned_data.get("headers", ""))

    def clean_token(self):
        token = self.cleaned_data.get("token", "").strip()
        if token and not re.fullmatch(r"[\x21-\x7e]+", token):
            raise ValidationError("The token must be printable ASCII without spaces.")
        return token

    def clean(self):
        cleaned = super().clean()
        retry, expire = cleaned.get("emergency_retry"), cleaned.get("emergency_expire")
        if retry and expire and expire < retry:
            self.add_error("emergency_expire", "Repeats must go on at least one repeat long.")
        return cleaned

    def config(self) -> dict:
        """The channel's settings from the cleaned data (kept secrets included)."""
        data = self.cleaned_data
        config = {}
        for name in CONFIG_BY_KIND[self.kind]:
            value = data.get(name)
            if self._keeps(name, value):
                value = self.kept_secrets[name]
            if value not in ("", None, {}):
                config[name] = value
        if self.kind == Kind.PUSHOVER:
            config.setdefault("emergency_retry", EMERGENCY_RETRY_DEFAULT)
            config.setdefault("emergency_expire", EMERGENCY_EXPIRE_DEFAULT)
        return config

    def save(self) -> Channel:
        data = self.cleaned_data
        channel = self.instance or Channel(team=self.team, kind=self.kind)
        channel.name = data["name"]
        channel.is_enabled = data["is_enabled"]
        channel.config = self.config()
        channel.save()
        return channel


def described_settings(channel: Channel) -> tuple[list[tuple[str, str]], list[str]]:
    """What a channel's page shows: its settings that are not secrets (label, value), and the
    labels of the secrets it holds (only that they are there)."""
    form = ChannelForm(kind=channel.kind, team=channel.team, instance=channel)
    shown, hidden = [], []
    for name in CONFIG_BY_KIND[channel.kind]:
        if name in ("address", "url", "headers") and not is_secret(channel.kind, name):
            continue  # the page shows these its own way
        value = channel.config.get(name)
        if value in (None, "", {}):
            continue
        label = str(form.fields[name].label)
        if is_secret(channel.kind, name):
            hidden.append(label)
        else:
            shown.append((label, str(value)))
    return shown, hidden


class GroupingForm(forms.ModelForm):
    group_wait = forms.IntegerField(
        min_value=0,
        max_value=3600,
        label="Group wait (seconds)",
        help_text=(
            "Failures that start within this long of a message join one follow-up sent this "
            "long after the first of them; recoveries wait this long. The first failure of a "
            "burst never waits."
        ),
    )
    group_interval = forms.IntegerField(
        min_value=0,
        max_value=86400,
        label="Group interval (seconds)",
        help_text=(
            "Reminders and repeats about incidents already told go out at most this often; "
            "new failures and recoveries never wait for it."
        ),
    )

    class Meta:
        model = TeamNotificationSettings
        fields = ["group_by"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["group_wait"] = int(self.instance.group_wait.total_seconds())
            self.initial["group_interval"] = int(self.instance.group_interval.total_seconds())

    def save(self, commit=True):
        self.instance.group_wait = timedelta(seconds=self.cleaned_data["group_wait"])
        self.instance.group_interval = timedelta(seconds=self.cleaned_data["group_interval"])
        return super().save(commit=commit)
