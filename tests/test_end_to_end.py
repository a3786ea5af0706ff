"""End to end across the queue: a check is created, pinged over HTTP, swept, and the alert
email is delivered by a real Celery worker (tests/worker.py) on the configured broker (Redis
in CI); its one-click links are then used over HTTP against the production WSGI app.

Time: pings are stamped by the database clock as they arrive. "Time passes" is a sweep with an
injected `now` (the service the beat task calls); sweeps that need no time travel go through
the beat task itself, on the worker.
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

from apps.checks.models import Check
from apps.checks.sweeper import sweep_due_checks
from apps.checks.tasks import sweep_due_checks_task
from apps.incidents.models import Incident, UsedActionToken
from apps.notifications.models import Notification
from apps.teams.models import Membership
from apps.teams.templatetags.times import when
from tests.factories import MembershipFactory
from tests.live import fetch

pytestmark = pytest.mark.django_db(transaction=True)

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)


def delivered(event: str, count: int):
    """A wait_for condition: `count` rows of `event` exist and every one was sent."""

    def condition():
        statuses = list(Notification.objects.filter(event=event).values_list("status", flat=True))
        return len(statuses) == count and set(statuses) == {Notification.DeliveryStatus.SENT}

    return condition


def mail_to(address: str, subject_prefix: str):
    (message,) = [
        m for m in mail.outbox if m.to == [address] and m.subject.startswith(subject_prefix)
    ]
    return message


def html_of(message) -> str:
    (alternative,) = message.alternatives
    content, mimetype = alternative
    assert mimetype == "text/html"
    return content


def link(body: str, label: str) -> str:
    match = re.search(rf"^{label}: (\S+)$", body, re.MULTILINE)
    assert match, f"no {label} link in:\n{body}"
    return match.group(1)


def path_of(url: str) -> str:
    assert url.startswith(settings.SITE_URL + "/"), url
    return url.removeprefix(settings.SITE_URL)


def create_check(client, **fields) -> Check:
    data = {"period_0": 1, "period_1": "days", "grace_0": 1, "grace_1": "hours", **fields}
    response = client.post(reverse("dashboard:check-create"), data)
    assert response.status_code == 302, response.content.decode()
    return Check.objects.get(name=fields["name"])


@pytest.fixture
def on_call(team, owner):
    """The owner (alice) and a member (bob) receive alerts; both may act on incidents."""
    bob = MembershipFactory(team=team, role=Membership.Role.MEMBER, user__username="bob").user
    return owner, bob


def test_missed_heartbeat_alert_acknowledge_and_recovery(
    celery_worker, live_app_url, client, on_call
):
    alice, bob = on_call
    client.force_login(alice)
    check = create_check(client, name="nightly-backup", environment="production", tags="backup, db")
    assert check.status == Check.Status.NEW

    # The job pings over HTTP; the beat task (on the worker) sees the first success: up.
    reply = fetch(live_app_url, "POST", f"/ping/{check.ping_token}", body=b"backup ok\n")
    assert (reply.status, reply.body) == (200, b"OK")
    sweep_due_checks_task.delay()
    celery_worker.wait_for(
        lambda: Check.objects.get(id=check.id).status == Check.Status.UP, what="check up"
    )
    check.refresh_from_db()
    pinged_at = check.last_ping_at
    assert mail.outbox == []

    # Time passes and no ping comes: late after the period, down after the grace.
    skew = settings.CLOCK_SKEW_ALLOWANCE
    with celery_worker.exclusive():
        sweep_due_checks(now=pinged_at + check.period + skew + SECOND)
        assert Check.objects.get(id=check.id).status == Check.Status.LATE
        assert not Notification.objects.exists()
        sweep_due_checks(now=pinged_at + check.period + skew + check.grace + MINUTE)
    # The sweep committed two outbox rows; the worker delivers them.
    celery_worker.wait_for(delivered("down", 2), what="two DOWN emails sent")

    check.refresh_from_db()
    incident = Incident.objects.get(owner=check)
    assert check.status == Check.Status.DOWN
    assert incident.state == Incident.State.TRIGGERED
    assert incident.kind == Incident.Kind.MISSED_HEARTBEAT
    assert len(mail.outbox) == 2
    assert sorted(m.to[0] for m in mail.outbox) == [alice.email, bob.email]
    assert all(row.attempts == 1 for row in Notification.objects.all())

    down = mail_to(bob.email, "[Tocsin] DOWN")
    html = html_of(down)
    assert down.subject == "[Tocsin] DOWN nightly-backup (production)"
    assert down.from_email == settings.DEFAULT_FROM_EMAIL
    assert "nightly-backup (production) is DOWN." in down.body
    assert "Why: Missed heartbeat: no ping came in time." in down.body
    # Emails show human dates in the recipient's zone (UTC unless they chose one).
    assert f"Expected at: {when(pinged_at + check.period, 'seconds')}" in down.body
    assert f"Last ping at: {when(pinged_at, 'seconds')}" in down.body
    assert "Tags: backup, db" in down.body
    check_url = f"{settings.SITE_URL}/checks/{check.id}/"
    incident_url = f"{settings.SITE_URL}/incidents/{incident.id}/"
    assert link(down.body, "Check") == check_url
    assert link(down.body, "Incident") == incident_url
    acknowledge_url = link(down.body, "Acknowledge")
    resolve_url = link(down.body, "Resolve")
    for url in (check_url, incident_url, acknowledge_url, resolve_url):
        assert f'href="{url}"' in html
    assert "<strong>nightly-backup</strong> (production)" in html
    assert "backup, db" in html
    # Each recipient gets links of their own.
    alices = mail_to(alice.email, "[Tocsin] DOWN")
    assert link(alices.body, "Acknowledge") != acknowledge_url

    # A mail scanner (or a curious human) fetching the link changes nothing, however often.
    for _ in range(2):
        page = fetch(live_app_url, "GET", path_of(acknowledge_url))
        assert page.status == 200
        assert "Acknowledge this incident?" in page.text
        assert '<form method="post">' in page.text
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED
    assert incident.acknowledged_by is None
    assert not UsedActionToken.objects.exists()

    # The button: a POST with no session and no CSRF token acknowledges, as bob.
    done = fetch(live_app_url, "POST", path_of(acknowledge_url), body=b"")
    assert done.status == 200, done.text
    assert "acknowledged" in done.text
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    assert incident.acknowledged_by == bob
    assert incident.acknowledged_at is not None
    # The link works once.
    again = fetch(live_app_url, "POST", path_of(acknowledge_url), body=b"")
    assert again.status == 409
    assert "already been used" in again.text
    # Alice, who was told too, hears that bob has it; bob is not told about himself.
    celery_worker.wait_for(delivered("acknowledged", 1), what="one ACKNOWLEDGED email sent")
    assert Notification.objects.get(event="acknowledged").address == alice.email
    assert "bob" in mail.outbox[-1].body and mail.outbox[-1].to == [alice.email]

    # The job runs again and succeeds; the beat task on the worker resolves the incident and
    # the recovery emails go out from the same worker.
    reply = fetch(live_app_url, "GET", f"/ping/{check.ping_token}")
    assert reply.status == 200
    sweep_due_checks_task.delay()
    celery_worker.wait_for(delivered("resolved", 2), what="two RESOLVED emails sent")

    check.refresh_from_db()
    incident.refresh_from_db()
    assert check.status == Check.Status.UP
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution == Incident.Resolution.RECOVERED
    assert incident.acknowledged_by == bob
    assert len(mail.outbox) == 5
    resolved = mail_to(bob.email, "[Tocsin] RESOLVED")
    assert resolved.subject == "[Tocsin] RESOLVED nightly-backup (production)"
    assert "is resolved: The check recovered." in resolved.body
    assert link(resolved.body, "Incident") == incident_url
    assert "Acknowledge" not in resolved.body
    assert "RESOLVED" in html_of(resolved)

    # Alice's resolve link from the DOWN email is now refused and changes nothing.
    late = fetch(live_app_url, "POST", path_of(link(alices.body, "Resolve")), body=b"")
    assert late.status == 409
    assert "already resolved" in late.text
    incident.refresh_from_db()
    assert incident.resolution == Incident.Resolution.RECOVERED
    assert incident.resolved_by is None


def test_failed_run_alert_resolved_from_the_email_in_real_time(
    celery_worker, live_app_url, client, on_call
):
    """No time travel: a failure is due at once, so the beat task on the worker handles it."""
    alice, bob = on_call
    client.force_login(alice)
    check = create_check(client, name="db-dump", environment="", tags="")
    body = b"".join(b"dumping table %d\n" % n for n in range(40)) + b"pg_dump: error: disk full\n"

    reply = fetch(live_app_url, "POST", f"/ping/{check.ping_token}/3", body=body)
    assert reply.status == 200
    sweep_due_checks_task.delay()
    celery_worker.wait_for(delivered("down", 2), what="two DOWN emails sent")

    incident = Incident.objects.get(owner=check)
    assert incident.kind == Incident.Kind.FAILURE_SIGNAL
    down = mail_to(alice.email, "[Tocsin] DOWN")
    assert down.subject == "[Tocsin] DOWN db-dump"
    assert "the job reported a failure with exit status 3." in down.body
    assert "pg_dump: error: disk full" in down.body
    # The tail, not the whole log.
    assert "dumping table 39" in down.body
    assert "dumping table 5\n" not in down.body
    assert "Tags: -" in down.body
    assert "exit status 3" in html_of(down)

    resolve_path = path_of(link(down.body, "Resolve"))
    page = fetch(live_app_url, "GET", resolve_path)
    assert page.status == 200
    assert "Resolve this incident?" in page.text
    # The resolve commits and enqueues on commit, inside the request: on SQLite the server
    # thread shares the worker's connection, so the worker waits for the request to finish.
    with celery_worker.exclusive():
        done = fetch(live_app_url, "POST", resolve_path, body=b"")
    assert done.status == 200
    celery_worker.wait_for(delivered("resolved", 2), what="two RESOLVED emails sent")

    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution == Incident.Resolution.MANUAL
    assert incident.resolved_by == alice
    resolved = mail_to(bob.email, "[Tocsin] RESOLVED")
    assert resolved.subject == "[Tocsin] RESOLVED db-dump"
    assert f"Resolved by hand ({alice.username})" in resolved.body
    # The check itself is still down: resolving by hand does not invent a successful run.
    assert Check.objects.get(id=check.id).status == Check.Status.DOWN
