"""Pings by email, as Healthchecks has them, for jobs that can only send mail (backup
appliances, NAS boxes, cron's MAILTO).

A mail to `<check uuid>@PING_EMAIL_DOMAIN`, or to `<team ping key>+<slug>@PING_EMAIL_DOMAIN`,
is one ping of that check. The SMTP listener (`python manage.py smtpd_pings`) refuses any other
recipient at RCPT with 550, so a mistyped address bounces at the sender instead of vanishing;
a mail larger than PING_EMAIL_MAX_SIZE is refused with 552. The mail is recorded through
`record_ping`, the same statement an HTTP ping uses, with method "EMAIL": its subject and text
body (an HTML-only mail converted to text) as the body, cut to PING_BODY_LIMIT. The check's
email keywords decide, on arrival, whether it is a success, a failure, a start or only a log
entry (rules.classify_email); the sweeper folds it in like any ping.
"""

import email
import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

from .models import Check
from .pings import PingData, record_ping
from .rules import EMAIL_METHOD, classify_email
from .storable import storable_text

logger = logging.getLogger(__name__)

_UUID_SHAPE = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z")
# A team's ping key (token_urlsafe) and a slug: neither holds a "+", so the first one splits.
_KEY_SLUG_SHAPE = re.compile(r"^([A-Za-z0-9_-]{1,64})\+([A-Za-z0-9_-]{1,100})\Z")
# One mail may ping several checks, but not every check of a leaked team key in one go.
MAX_RECIPIENTS = 20
_USER_AGENT_MAX = 200


@dataclass(frozen=True)
class Recipient:
    """Which check an address names: by its uuid, or by its team's ping key and its slug."""

    token: UUID | None = None
    ping_key: str = ""
    slug: str = ""


def parse_recipient(address: str, domain: str) -> Recipient | None:
    """The check an address names, by shape only (None: not an address of ours)."""
    local, at, address_domain = address.strip().strip("<>").rpartition("@")
    if not at or not domain or address_domain.lower() != domain.lower():
        return None
    if _UUID_SHAPE.match(local.lower()):
        return Recipient(token=UUID(local))
    match = _KEY_SLUG_SHAPE.match(local)
    if match:
        # Slugs are stored in lower case; the key is case-sensitive, as in the ping URL.
        return Recipient(ping_key=match[1], slug=match[2].lower())
    return None


def find_check(recipient: Recipient) -> Check | None:
    """The one check `recipient` names, or None (unknown, or a slug two checks share, which
    the HTTP path answers 409: neither gets the ping)."""
    if recipient.token is not None:
        return Check.objects.filter(id=recipient.token).first()
    matches = list(Check.objects.filter(team__ping_key=recipient.ping_key, slug=recipient.slug)[:2])
    return matches[0] if len(matches) == 1 else None


class _TextOfHtml(HTMLParser):
    """The readable text of an HTML mail: no tags, scripts or styles; block ends as newlines."""

    _BLOCKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "pre"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._HIDDEN:
            self.hidden_depth += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        elif tag == "td":
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in self._HIDDEN:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _part_text(part) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError, KeyError):
        # An unknown or lying charset: the bytes as UTF-8, unreadable ones replaced.
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def read_mail(raw: bytes) -> tuple[str, str]:
    """(subject, text body) of a raw message: the text/plain part, else the text/html part
    as text, else nothing. Never raises on a malformed message."""
    message = email.message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
    try:
        subject = " ".join(str(message.get("subject", "")).split())
    except (ValueError, IndexError, AttributeError, LookupError):  # a header the parser chokes on
        subject = ""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, LookupError, AttributeError):
        part = None
    if part is None:
        return subject, ""
    # SMTP lines end in CRLF; the ping log shows text as HTTP bodies usually come.
    text = _part_text(part).replace("\r\n", "\n")
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return subject, text


def mail_ping_data(*, kind: str, subject: str, text: str, mail_from: str, peer: str) -> PingData:
    """The ping a mail makes: subject and text as the body (cut to PING_BODY_LIMIT bytes, NUL
    and lone surrogates replaced), the sender as the user agent."""
    body = storable_text(f"Subject: {subject}\n\n{text}").encode("utf-8")
    limit = settings.PING_BODY_LIMIT
    return PingData(
        kind=kind,
        method=EMAIL_METHOD,
        remote_addr=storable_text(peer, 64),
        user_agent=storable_text(f"Email from {mail_from}", _USER_AGENT_MAX),
        # errors="ignore" on the cut only drops a UTF-8 sequence split at the limit.
        body=body[:limit].decode("utf-8", errors="ignore").encode("utf-8"),
        body_truncated=len(body) > limit,
    )


def record_email_ping(*, recipient: Recipient, raw: bytes, mail_from: str, peer: str) -> bool:
    """Record one mail as a ping of the check `recipient` names. Returns False when no check
    (or a shared slug) matches; nothing is written then. Not idempotent: a mail sent twice is
    two pings, as an HTTP ping sent twice is."""
    check = find_check(recipient)
    if check is None:
        return False
    subject, text = read_mail(raw)
    kind = classify_email(subject, text, check.email_rules())
    ping = mail_ping_data(kind=kind, subject=subject, text=text, mail_from=mail_from, peer=peer)
    return record_ping(ping=ping, token=check.id)


def _with_fresh_connection(function):
    """Run `function` on a connection opened for it and closed after it: the listener lives
    for weeks, and a mail now and then does not need a connection kept (and gone stale)."""

    def run(**kwargs):
        close_old_connections()
        try:
            return function(**kwargs)
        finally:
            connections.close_all()

    return sync_to_async(run, thread_sensitive=True)


_check_exists = _with_fresh_connection(lambda recipient: find_check(recipient) is not None)
_record = _with_fresh_connection(record_email_ping)


class EmailPingHandler:
    """aiosmtpd handler: checks recipients at RCPT, records each at DATA."""

    def __init__(self, domain: str):
        self.domain = domain

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        recipient = parse_recipient(address, self.domain)
        try:
            known = recipient is not None and await _check_exists(recipient=recipient)
        except DatabaseError:
            logger.exception("could not look up an email ping's recipient")
            return "451 4.3.0 Temporary failure, try again later"
        if not known:
            return "550 5.1.1 No such check"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        mail_from = envelope.mail_from or ""
        recorded = 0
        for address in envelope.rcpt_tos:
            try:
                recorded += await _record(
                    recipient=parse_recipient(address, self.domain),
                    raw=envelope.original_content or envelope.content or b"",
                    mail_from=mail_from,
                    peer=peer,
                )
            except DatabaseError:
                logger.exception("could not record an email ping")
                return "451 4.3.0 Temporary failure, try again later"
        if not recorded:
            # Every check named at RCPT was deleted since: the sender learns it was not kept.
            return "550 5.1.1 No such check"
        return "250 OK"


def make_listener(*, host: str, port: int, domain: str):
    """An aiosmtpd Controller (started by the caller with .start(), stopped with .stop())."""
    from aiosmtpd.controller import Controller

    return Controller(
        EmailPingHandler(domain),
        hostname=host,
        port=port,
        data_size_limit=settings.PING_EMAIL_MAX_SIZE,
        server_hostname=domain,
        # A sender that opens a connection and stalls holds it only this long.
        timeout=60,
    )
