"""Email: to a team member's own address, or to an email channel's address."""

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from ..message import Message
from . import DeliveryError, SendOutcome


def render_email(message: Message, *, to: str) -> EmailMultiAlternatives:
    context = {
        "message": message,
        "items": message.items,
        "item": message.items[0] if message.items else None,
    }
    # Subjects are one line whatever a check's name holds (no header injection).
    subject = " ".join(render_to_string("emails/notification_subject.txt", context).split())
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    email.attach_alternative(render_to_string("emails/notification.html", context), "text/html")
    return email


def is_permanent(exc: Exception) -> bool:
    """A 5xx SMTP answer (to the sender, every recipient or the message) says that the same
    message will be refused again. Anything else (a refused or dropped connection, a timeout, a
    4xx such as greylisting) may pass later. So may a server that refuses the whole session
    in its greeting ("554 No SMTP service here", RFC 5321 3.1): that is about the server now,
    not about this message, and mail servers retry it too."""
    if isinstance(exc, smtplib.SMTPConnectError):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


def send(message: Message, *, address: str) -> SendOutcome:
    try:
        render_email(message, to=address).send(fail_silently=False)
    except Exception as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=is_permanent(exc)) from exc
    return SendOutcome()


class EmailChannel:
    """An email channel: the member's email, to the channel's address."""

    def send(self, message: Message, *, channel, delivery, now, client=None) -> SendOutcome:
        return send(message, address=channel.config.get("address", ""))
