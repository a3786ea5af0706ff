"""Email pings through a real SMTP session: smtplib against the listener of
apps/checks/email_pings.py, started on a free port in this process."""

import smtplib
import socket
from datetime import timedelta
from email.message import EmailMessage

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from apps.checks.email_pings import (
    MAX_RECIPIENTS,
    Recipient,
    html_to_text,
    make_listener,
    parse_recipient,
    read_mail,
)
from apps.checks.models import Check, Ping
from apps.checks.rules import EmailRules, PingKind, classify_email
from apps.checks.sweeper import sweep_due_checks
from tests.factories import CheckFactory, TeamFactory

DOMAIN = "pings.tocsin.example"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def listener(settings):
    settings.PING_EMAIL_DOMAIN = DOMAIN
    settings.PING_EMAIL_MAX_SIZE = 64 * 1024
    settings.PING_BODY_LIMIT = 2000
    controller = make_listener(host="127.0.0.1", port=_free_port(), domain=DOMAIN)
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def smtp(listener):
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as client:
        yield client


def _mail(to, subject="Backup report", text="All done.", html=None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "nas@office.example"
    message["To"] = to
    message["Subject"] = subject
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return message


def _pings(check) -> list[Ping]:
    return list(Ping.objects.filter(owner=check).order_by("n"))


pytestmark = pytest.mark.django_db(transaction=True)


def test_mail_to_the_uuid_address_is_a_success_ping(smtp):
    check = CheckFactory(slug="backup")
    refused = smtp.send_message(_mail(f"{check.id}@{DOMAIN}", text="Copied 12 files."))
    assert refused == {}
    [ping] = _pings(check)
    assert ping.kind == Ping.Kind.SUCCESS
    assert ping.method == "EMAIL"
    assert ping.user_agent == "Email from nas@office.example"
    assert ping.remote_addr == "127.0.0.1"
    assert ping.body_text == "Subject: Backup report\n\nCopied 12 files.\n"
    check.refresh_from_db()
    assert check.n_pings == 1 and check.last_ping_at is not None


def test_mail_to_key_plus_slug_pings_that_check_and_upper_case_slug_is_found(smtp):
    team = TeamFactory()
    check = CheckFactory(team=team, slug="nas-backup")
    CheckFactory(slug="nas-backup")  # another team's check with the same slug
    smtp.send_message(_mail(f"{team.ping_key}+NAS-Backup@{DOMAIN.upper()}"))
    assert [p.kind for p in _pings(check)] == [Ping.Kind.SUCCESS]
    assert Ping.objects.count() == 1


@pytest.mark.parametrize(
    "local",
    [
        "00000000-0000-0000-0000-000000000000",  # a uuid no check has
        "not-a-check",
        "wrongkey+backup",
        "",
        "a" * 65 + "+backup",
    ],
    ids=["unknown-uuid", "no-plus", "unknown-key", "empty", "key-too-long"],
)
def test_unknown_or_malformed_recipient_is_refused_at_rcpt(smtp, local):
    CheckFactory(slug="backup")
    smtp.ehlo()
    smtp.mail("nas@office.example")
    code, reply = smtp.rcpt(f"{local}@{DOMAIN}")
    # An empty local part is refused by the SMTP layer itself as malformed (553).
    assert code == (553 if local == "" else 550)
    assert code == 553 or b"No such check" in reply
    assert Ping.objects.count() == 0


def test_right_local_part_at_another_domain_is_refused(smtp):
    check = CheckFactory()
    smtp.ehlo()
    smtp.mail("nas@office.example")
    assert smtp.rcpt(f"{check.id}@elsewhere.example")[0] == 550


def test_shared_slug_is_refused_like_the_http_409(smtp):
    team = TeamFactory()
    CheckFactory(team=team, slug="twin")
    CheckFactory(team=team, slug="twin")
    smtp.ehlo()
    smtp.mail("nas@office.example")
    assert smtp.rcpt(f"{team.ping_key}+twin@{DOMAIN}")[0] == 550


def test_mail_with_one_known_and_one_unknown_recipient_pings_the_known_one(smtp):
    check = CheckFactory()
    refused = smtp.send_message(
        _mail(f"{check.id}@{DOMAIN}, nobody@{DOMAIN}"),
        to_addrs=[f"{check.id}@{DOMAIN}", f"nobody@{DOMAIN}"],
    )
    assert refused == {f"nobody@{DOMAIN}": (550, b"5.1.1 No such check")}
    assert len(_pings(check)) == 1


def test_too_many_recipients_are_refused_beyond_the_limit(smtp):
    check = CheckFactory()
    smtp.ehlo()
    smtp.mail("nas@office.example")
    codes = [smtp.rcpt(f"{check.id}@{DOMAIN}")[0] for _ in range(MAX_RECIPIENTS + 1)]
    assert codes[:MAX_RECIPIENTS] == [250] * MAX_RECIPIENTS
    assert codes[-1] == 452


def test_oversized_mail_is_refused_and_records_nothing(smtp):
    check = CheckFactory()
    with pytest.raises(smtplib.SMTPException) as refused:
        smtp.send_message(_mail(f"{check.id}@{DOMAIN}", text="x" * 100 * 1024))
    assert getattr(refused.value, "smtp_code", None) == 552
    assert _pings(check) == []


def test_oversized_mail_without_a_size_announcement_is_refused_at_data(smtp):
    check = CheckFactory()
    smtp.ehlo()
    smtp.mail("nas@office.example")  # no SIZE= parameter: the limit bites at the end of DATA
    assert smtp.rcpt(f"{check.id}@{DOMAIN}")[0] == 250
    message = _mail(f"{check.id}@{DOMAIN}", text=("y" * 70 + "\n") * 1500)
    code, _ = smtp.data(message.as_string())  # str: smtplib sends its lines with CRLF
    assert code == 552
    assert _pings(check) == []


def test_long_body_is_cut_to_the_ping_body_limit(smtp, settings):
    check = CheckFactory()
    smtp.send_message(_mail(f"{check.id}@{DOMAIN}", text="ä" * 5000))
    [ping] = _pings(check)
    assert ping.body_truncated
    assert len(bytes(ping.body)) <= settings.PING_BODY_LIMIT
    assert ping.body_text.startswith("Subject: Backup report\n\nää")


@pytest.mark.parametrize(
    ("subject", "text", "expected"),
    [
        ("Backup OK", "fine", Ping.Kind.SUCCESS),
        ("Backup FAILED", "disk full", Ping.Kind.FAIL),
        ("Backup started", "", Ping.Kind.START),
        ("Backup report", "nothing to say", Ping.Kind.LOG),
        # Failure keywords win over success keywords.
        ("Backup OK", "but one share FAILED", Ping.Kind.FAIL),
    ],
    ids=["success", "failure", "start", "no-keyword-is-a-log", "failure-wins"],
)
def test_keywords_on_subject_and_body_classify_the_mail(smtp, subject, text, expected):
    check = CheckFactory(
        email_filter_subject=True,
        email_filter_body=True,
        email_success_keywords="ok\ncompleted",
        email_failure_keywords="failed, error",
        email_start_keywords="started",
    )
    smtp.send_message(_mail(f"{check.id}@{DOMAIN}", subject=subject, text=text))
    assert [p.kind for p in _pings(check)] == [expected]


def test_subject_only_filter_ignores_keywords_in_the_body(smtp):
    check = CheckFactory(email_filter_subject=True, email_failure_keywords="failed")
    smtp.send_message(_mail(f"{check.id}@{DOMAIN}", subject="Nightly", text="FAILED"))
    assert [p.kind for p in _pings(check)] == [Ping.Kind.LOG]


def test_failure_mail_takes_the_check_down_at_the_next_sweep(smtp):
    check = CheckFactory(email_filter_subject=True, email_failure_keywords="failed")
    smtp.send_message(_mail(f"{check.id}@{DOMAIN}", subject="Backup FAILED"))
    sweep_due_checks(now=timezone.now() + timedelta(seconds=1))
    check.refresh_from_db()
    assert check.status == Check.Status.DOWN
    assert _pings(check)[0].outcome == "fail"


def test_email_ping_on_a_post_only_check_with_http_keywords_keeps_its_kind(smtp):
    # "Only POST counts" and the HTTP body keywords are about HTTP; the mail was judged on
    # arrival by the email keywords (none here: a success).
    check = CheckFactory(post_only=True, failure_keywords="FAILED", success_keywords="ok")
    smtp.send_message(_mail(f"{check.id}@{DOMAIN}", text="FAILED"))
    sweep_due_checks(now=timezone.now() + timedelta(seconds=1))
    check.refresh_from_db()
    assert check.status == Check.Status.UP
    assert _pings(check)[0].outcome == "success"


def test_html_only_mail_is_recorded_as_its_text(smtp):
    check = CheckFactory(email_filter_body=True, email_failure_keywords="error")
    html = (
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Job <b>backup</b> ended with an ERROR&nbsp;code</p><script>alert(1)</script>"
        "<table><tr><td>disk</td><td>full</td></tr></table></body></html>"
    )
    smtp.send_message(_mail(f"{check.id}@{DOMAIN}", text=None, html=html))
    [ping] = _pings(check)
    assert ping.kind == Ping.Kind.FAIL
    body = ping.body_text
    assert body.startswith("Subject: Backup report\n\nJob backup ended with an ERROR code\n")
    assert "disk full" in body
    assert "<" not in body and "alert(1)" not in body and "color:red" not in body


def test_nul_bytes_and_bad_utf8_are_stored_replaced(smtp):
    check = CheckFactory(email_filter_subject=True, email_success_keywords="done")
    raw = (
        f"From: nas@office.example\r\nTo: {check.id}@{DOMAIN}\r\nSubject: done\x00now\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + b"line\x00with nul \xff\xfe end\r\n"
    smtp.sendmail("nas@office.example", [f"{check.id}@{DOMAIN}"], raw)
    [ping] = _pings(check)
    assert ping.kind == Ping.Kind.SUCCESS
    assert b"\x00" not in bytes(ping.body)
    assert "line\ufffdwith nul" in ping.body_text


def test_garbage_message_is_still_a_ping(smtp):
    check = CheckFactory()
    smtp.sendmail("x@y", [f"{check.id}@{DOMAIN}"], b"\x00\x01 not a mail at all \xff")
    assert [p.kind for p in _pings(check)] == [Ping.Kind.SUCCESS]


# Rules and parsing without a session.


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("3F2504E0-4F89-11D3-9A0C-0305E82C3301@pings.tocsin.example", "uuid"),
        ("<abcDEF_-12+my-job@PINGS.tocsin.example>", "key"),
        ("abc+my.job@pings.tocsin.example", None),  # a dot is no slug character
        ("abc+@pings.tocsin.example", None),
        ("+job@pings.tocsin.example", None),
        ("abc+job@pings.tocsin.example.evil", None),
        ("abc+job", None),
        ("abc+job\x00@pings.tocsin.example", None),
    ],
)
def test_parse_recipient(address, expected):
    recipient = parse_recipient(address, DOMAIN)
    if expected is None:
        assert recipient is None
    elif expected == "uuid":
        assert recipient.token is not None
    else:
        assert recipient == Recipient(ping_key="abcDEF_-12", slug="my-job")


def test_classify_email_without_filters_is_always_success():
    rules = EmailRules(failure_keywords=("failed",))
    assert classify_email("FAILED", "FAILED", rules) == PingKind.SUCCESS


def test_html_to_text_keeps_blocks_apart():
    assert html_to_text("<p>one</p><p>two<br>three</p>") == "one\n\ntwo\nthree"


def test_read_mail_prefers_the_plain_part_and_decodes_the_subject():
    message = _mail("x@y", subject="Résumé  of\tthe night", text="plain", html="<p>h</p>")
    subject, text = read_mail(message.as_bytes())
    assert subject == "Résumé of the night"
    assert text == "plain\n"


def test_command_refuses_to_start_without_a_domain(settings):
    settings.PING_EMAIL_DOMAIN = ""
    with pytest.raises(CommandError, match="PING_EMAIL_DOMAIN"):
        call_command("smtpd_pings")


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def test_the_command_serves_mail_and_stops_on_sigterm():
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    check = CheckFactory()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "PING_EMAIL_DOMAIN": DOMAIN,
        "DEBUG": "1",
    }
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "manage.py", "smtpd_pings", "--host", "127.0.0.1", "--port"]
    server = subprocess.Popen(
        [*command, str(port)], cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert "listening on 127.0.0.1" in server.stdout.readline()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(_mail(f"{check.id}@{DOMAIN}", subject="from the command"))
        assert _pings(check)[0].body_text.startswith("Subject: from the command")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
