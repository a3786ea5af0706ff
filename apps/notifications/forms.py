"""Channel and grouping forms. A channel URL must be http(s) and must not point at a private,
loopback or link-local address (checked on save, as delivery checks it again on every send);
custom webhook headers are parsed strictly so that nothing can smuggle a second header or
override the protocol's own."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

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


class ChannelForm(forms.Form):
    """One form for every kind; `kind` decides which fields are shown and required."""

    FIELDS_BY_KIND = {
        Channel.Kind.EMAIL: ("name", "address", "is_enabled"),
        Channel.Kind.WEBHOOK: ("name", "url", "headers", "is_enabled"),
        Channel.Kind.SLACK: ("name", "url", "is_enabled"),
        Channel.Kind.NTFY: ("name", "url", "token", "is_enabled"),
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
    is_enabled = forms.BooleanField(required=False, initial=True, label="Enabled")

    URL_HELP = {
        Channel.Kind.WEBHOOK: "Tocsin POSTs JSON here, signed with this channel's secret.",
        Channel.Kind.SLACK: "A Slack or Mattermost incoming-webhook URL.",
        Channel.Kind.NTFY: "The topic URL, e.g. https://ntfy.sh/my-team-alerts or your own server.",
    }

    def __init__(self, *args, kind: str, team, instance: Channel | None = None, **kwargs):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "is_enabled": instance.is_enabled,
                "address": instance.config.get("address", ""),
                "url": instance.config.get("url", ""),
                "headers": format_headers(instance.config.get("headers", {})),
                "token": instance.config.get("token", ""),
            }
        super().__init__(*args, **kwargs)
        self.kind, self.team, self.instance = kind, team, instance
        for name in list(self.fields):
            if name not in self.FIELDS_BY_KIND[kind]:
                del self.fields[name]
        if "url" in self.fields:
            self.fields["url"].help_text = self.URL_HELP[kind]

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
        return validate_outbound_url(self.cleaned_data["url"])

    def clean_headers(self):
        return parse_headers(self.cleaned_data.get("headers", ""))

    def clean_token(self):
        token = self.cleaned_data.get("token", "").strip()
        if token and not re.fullmatch(r"[\x21-\x7e]+", token):
            raise ValidationError("The token must be printable ASCII without spaces.")
        return token

    def save(self) -> Channel:
        data = self.cleaned_data
        config = {key: data[key] for key in ("address", "url", "headers", "token") if data.get(key)}
        channel = self.instance or Channel(team=self.team, kind=self.kind)
        channel.name = data["name"]
        channel.is_enabled = data["is_enabled"]
        channel.config = config
        channel.save()
        return channel


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
