"""What the alert emails say: built through the real services (ping, sweep, deliver) with
injected time, read from mail.outbox."""

import re
import uuid
from datetime import timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core import mail

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.incidents.services import resolve_incident
from apps.incidents.tokens import read_action_token
from apps.notifications.delivery import deliver_notification
from apps.notifications.models import Notification
from apps.teams.models import Membership, UserSettings

SECOND, MINUTE, HOUR, DAY = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
)


def human(moment, zone="UTC") -> str:
    """How emails write a time: "2 Nov 2026, 03:00:00 UTC", in the recipient's zone."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%-d %b %Y, %H:%M:%S} {local:%Z}"


def ping(check, now, kind="success", **fields):
    assert record_ping(
        ping=PingData(kind=kind, method="POST", **fields), token=check.ping_token, now=now
    )


def deliver_all(now):
    for row in Notification.objects.filter(status=Notification.DeliveryStatus.PENDING):
        deliver_notification(notification_id=row.id, now=now)


def email_to(user, kind="DOWN"):
    (message,) = [m for m in mail.outbox if m.to == [user.email] and f"] {kind} " in m.subject]
    return message


def html_of(message) -> str:
    ((content, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    return content


def links(body: str) -> dict[str, str]:
    return dict(re.findall(r"^(Check|Incident|Acknowledge|Resolve): (\S+)$", body, re.MULTILINE))


def miss_a_heartbeat(check, t0) -> Incident:
    """Pinged at t0, never again: down after period + grace (plus the skew allowance)."""
    ping(check, t0)
    sweep_due_checks(now=t0 + MINUTE)
    sweep_due_checks(now=t0 + check.period + MINUTE)
    sweep_due_checks(now=t0 + check.period + check.grace + MINUTE)
    deliver_all(t0 + check.period + check.grace + MINUTE)
    return Incident.objects.get(owner=check)


def fail_a_run(check, t0, **fields) -> Incident:
    ping(check, t0, kind="fail", **fields)
    sweep_due_checks(now=t0 + SECOND)
    deliver_all(t0 + SECOND)
    return Incident.objects.get(owner=check)


# --- DOWN ---------------------------------------------------------------------------------


def test_missed_heartbeat_email_says_what_was_expected(check, member, t0):
    incident = miss_a_heartbeat(check, t0)
    message = email_to(member)

    assert message.subject == "[Tocsin] DOWN nightly-backup (production)"
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.to == [member.email]
    body = message.body
    assert body.startswith("nightly-backup (production) is DOWN.\n")
    assert "Why: Missed heartbeat: no ping came in time.\n" in body
    assert f"Expected at: {human(t0 + DAY)}\n" in body
    assert f"Last ping at: {human(t0)}\n" in body
    assert "+00:00" not in body  # no raw ISO 8601
    assert "Tags: backup, nightly\n" in body
    opened = human(t0 + DAY + HOUR + settings.CLOCK_SKEW_ALLOWANCE)
    assert f"Opened: {opened}\n" in body
    assert human(incident.opened_at) == opened
    assert "exit status" not in body

    html = html_of(message)
    assert "<strong>nightly-backup</strong> (production)" in html
    assert "Missed heartbeat" in html
    assert human(t0 + DAY) in html
    assert "backup, nightly" in html


def test_links_are_absolute_and_point_at_the_check_and_incident(check, member, t0):
    incident = miss_a_heartbeat(check, t0)
    message = email_to(member)
    found = links(message.body)
    assert found["Check"] == f"https://tocsin.example/checks/{check.id}/"
    assert found["Incident"] == f"https://tocsin.example/incidents/{incident.id}/"
    html = html_of(message)
    for url in found.values():
        assert url.startswith("https://tocsin.example/")
        assert f'href="{url}"' in html


def test_action_links_are_bound_to_incident_action_and_recipient(check, member, owner, t0):
    incident = miss_a_heartbeat(check, t0)
    seen_nonces = set()
    for user in (member, owner):
        found = links(email_to(user).body)
        for action, label in (("acknowledge", "Acknowledge"), ("resolve", "Resolve")):
            prefix = "https://tocsin.example/a/"
            assert found[label].startswith(prefix)
            claim = read_action_token(found[label].removeprefix(prefix).rstrip("/"))
            assert (claim.incident_id, claim.action, claim.user_id) == (
                incident.id,
                action,
                user.id,
            )
            seen_nonces.add(claim.nonce)
    assert len(seen_nonces) == 4


def test_failure_email_gives_exit_status_run_id_and_the_end_of_the_output(check, member, t0):
    run_id = uuid.uuid4()
    output = b"".join(b"step %d done\n" % n for n in range(1, 101)) + b"ERROR: disk full\n"
    fail_a_run(check, t0, exit_status=74, run_id=run_id, body=output)
    body = email_to(member).body

    assert "Why: Failure signal: the job reported a failure with exit status 74.\n" in body
    assert f"Failed at: {human(t0)}\n" in body
    assert f"Run id: {run_id}\n" in body
    assert "Last lines of the job's output:\nstep 82 done\n" in body
    assert "step 100 done\nERROR: disk full\n" in body
    assert "step 81 done" not in body
    assert "Expected at" not in body

    html = html_of(email_to(member))
    assert "exit status 74" in html
    assert "ERROR: disk full" in html
    assert str(run_id) in html


def test_failure_without_exit_status_says_so_plainly(check, member, t0):
    fail_a_run(check, t0)
    body = email_to(member).body
    assert "Why: Failure signal: the job reported a failure.\n" in body
    assert "exit status" not in body
    assert "Last lines" not in body


def test_output_that_is_not_utf8_still_makes_an_email(check, member, t0):
    fail_a_run(check, t0, exit_status=1, body=b"caf\xe9 \xff\xfe broken\n")
    assert "caf\ufffd \ufffd\ufffd broken" in email_to(member).body


def test_no_environment_and_no_tags(team, member, t0):
    from tests.factories import CheckFactory

    check = CheckFactory(team=team, name="db-dump", environment="", tags="")
    fail_a_run(check, t0, exit_status=2)
    message = email_to(member)
    assert message.subject == "[Tocsin] DOWN db-dump"
    assert message.body.startswith("db-dump is DOWN.\n")
    assert "Tags: -\n" in message.body


def test_hostile_check_name_cannot_inject_headers_or_markup(check, member, t0):
    check.name = 'evil\r\nBcc: everyone@example.com\n<img src=x onerror="alert(1)">'
    check.tags = "<b>tag</b>"
    check.save()
    fail_a_run(check, t0, exit_status=1, body=b"<script>alert(2)</script>\n")
    message = email_to(member)

    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.subject.startswith("[Tocsin] DOWN evil Bcc: everyone@example.com <img")
    raw = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    assert raw["Bcc"] is None
    assert raw["To"] == member.email

    html = html_of(message)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "<script>alert(2)" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "<b>tag</b>" not in html
    # The plain text part is text: no escaping there.
    assert "<script>alert(2)</script>" in message.body


def test_subject_is_plain_text_not_html(check, member, t0):
    check.name = "Backup & restore 'nightly' <full>"
    check.environment = "R&D"
    check.save()
    fail_a_run(check, t0, exit_status=1)
    message = email_to(member)
    assert message.subject == "[Tocsin] DOWN Backup & restore 'nightly' <full> (R&D)"
    assert "Backup &amp; restore &#x27;nightly&#x27; &lt;full&gt;" in html_of(message)


def test_non_ascii_names_survive_the_trip(check, member, t0):
    check.name = "Sauvegarde à Zürich"
    check.environment = "prodúction"
    check.save()
    fail_a_run(check, t0, exit_status=1)
    message = email_to(member)
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    # (The stdlib parser keeps the space that folds an encoded header onto its next line.)
    assert parsed["Subject"].strip() == ("[Tocsin] DOWN Sauvegarde à Zürich (prodúction)")
    assert (
        parsed.get_body(("plain",))
        .get_content()
        .startswith("Sauvegarde à Zürich (prodúction) is DOWN.")
    )


def test_viewers_are_told_but_get_no_action_links(check, viewer, member, t0):
    fail_a_run(check, t0, exit_status=1)
    told = email_to(viewer)
    assert set(links(told.body)) == {"Check", "Incident"}
    assert "/a/" not in html_of(told)
    assert "Acknowledge" not in html_of(told)
    assert set(links(email_to(member).body)) == {"Check", "Incident", "Acknowledge", "Resolve"}


def test_recipient_removed_before_delivery_gets_no_action_links(check, member, t0):
    ping(check, t0, kind="fail", exit_status=1)
    sweep_due_checks(now=t0 + SECOND)
    Membership.objects.filter(user=member).delete()
    deliver_all(t0 + MINUTE)
    assert set(links(email_to(member).body)) == {"Check", "Incident"}


def test_recipient_deleted_before_delivery_still_gets_the_alert(check, member, t0):
    ping(check, t0, kind="fail", exit_status=1)
    sweep_due_checks(now=t0 + SECOND)
    address = member.email
    member.delete()
    deliver_all(t0 + MINUTE)
    (message,) = mail.outbox
    assert message.to == [address]
    assert "Acknowledge" not in message.body


def test_inactive_users_and_users_without_address_get_nothing(check, member, owner, t0):
    owner.email = ""
    owner.save()
    member.is_active = False
    member.save()
    fail_a_run(check, t0, exit_status=1)
    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_outsiders_get_nothing(check, member, outsider, t0):
    fail_a_run(check, t0, exit_status=1)
    assert [m.to for m in mail.outbox] == [[member.email]]


# --- RESOLVED -----------------------------------------------------------------------------


def test_recovery_email(check, member, t0):
    incident = miss_a_heartbeat(check, t0)
    back = t0 + 2 * DAY
    ping(check, back)
    sweep_due_checks(now=back + MINUTE)
    deliver_all(back + MINUTE)
    message = email_to(member, "RESOLVED")

    assert message.subject == "[Tocsin] RESOLVED nightly-backup (production)"
    body = message.body
    assert body.startswith("nightly-backup (production) is resolved: The check recovered.\n")
    assert f"Opened: {human(incident.opened_at)} (Missed heartbeat)\n" in body
    assert f"Resolved: {human(back)}\n" in body
    assert set(links(body)) == {"Check", "Incident"}
    html = html_of(message)
    assert "RESOLVED" in html
    assert "The check recovered" in html
    assert "/a/" not in html


def test_resolved_by_hand_names_who(check, member, owner, t0):
    incident = fail_a_run(check, t0, exit_status=1)
    resolve_incident(incident_id=incident.id, user=owner, now=t0 + HOUR)
    deliver_all(t0 + HOUR)
    message = email_to(member, "RESOLVED")
    assert "is resolved: Resolved by hand (alice).\n" in message.body
    assert "Resolved by hand (alice)" in html_of(message)


@pytest.mark.parametrize("event", ["down", "resolved"])
def test_every_email_has_plain_text_and_html(check, member, t0, event):
    incident = fail_a_run(check, t0, exit_status=1)
    if event == "resolved":
        resolve_incident(incident_id=incident.id, user=member, now=t0 + HOUR)
        deliver_all(t0 + HOUR)
    message = email_to(member, event.upper())
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert html_of(message).lstrip().startswith("<!doctype html>")


def test_email_gives_severity_run_duration_and_every_action_link(check, member, t0):
    run_id = uuid.uuid4()
    ping(check, t0 - timedelta(seconds=95), kind="start", run_id=run_id)
    incident = fail_a_run(check, t0, exit_status=5, run_id=run_id, body=b"boom\n")
    message = email_to(member)
    body = message.body
    assert f"Severity: {incident.severity}\n" in body
    assert "Exit status: 5\n" in body
    assert "Run duration: 95 s\n" in body
    assert f"Run id: {run_id}\n" in body
    assert f"Last ping at: {human(t0)}\n" in body
    labels = {
        "Acknowledge": "acknowledge",
        "Resolve": "resolve",
        "Silence 1 h": "silence_1h",
        "Silence 4 h": "silence_4h",
        "Silence 24 h": "silence_24h",
        "Not me, escalate now": "escalate",
    }
    found = dict(re.findall(r"^([A-Za-z0-9 ,]+): (https://tocsin\.example/a/\S+)$", body, re.M))
    assert set(found) == set(labels)
    for label, action in labels.items():
        token = found[label].removeprefix("https://tocsin.example/a/").rstrip("/")
        claim = read_action_token(token)
        assert (claim.incident_id, claim.action, claim.user_id) == (incident.id, action, member.id)
        assert f'href="{found[label]}"' in html_of(message)
    html = html_of(message)
    assert "95 s" in html and incident.severity in html


def test_email_times_are_in_the_recipients_chosen_zone(check, member, t0):
    UserSettings.objects.create(user=member, display_timezone="Europe/Riga")
    miss_a_heartbeat(check, t0)
    body = email_to(member).body
    assert f"Expected at: {human(t0 + DAY, 'Europe/Riga')}\n" in body
    assert f"Last ping at: {human(t0, 'Europe/Riga')}\n" in body
    assert " EET\n" in body and " UTC\n" not in body
