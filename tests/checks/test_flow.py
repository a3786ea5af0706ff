"""Ping -> sweep -> incident -> recovery through the real services, with injected time."""

from datetime import timedelta

from django.core import mail

from apps.checks.models import Check, Flip, Ping
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.notifications.delivery import deliver_notification
from apps.notifications.models import Notification

DAY, HOUR, MIN = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def ping(check, kind="success", now=None, **kw):
    return record_ping(
        ping=PingData(kind=kind, method="POST", **kw), token=check.ping_token, now=now
    )


def deliver_all(now):
    for n in Notification.objects.filter(status="pending"):
        deliver_notification(notification_id=n.id, now=now)


def test_missed_heartbeat_opens_incident_and_success_resolves(check, owner, t0):
    assert ping(check, now=t0)
    sweep_due_checks(now=t0 + MIN)
    check.refresh_from_db()
    assert check.status == Check.Status.UP
    assert check.alert_after == t0 + DAY + timedelta(seconds=5)

    sweep_due_checks(now=t0 + DAY + MIN)
    check.refresh_from_db()
    assert check.status == Check.Status.LATE
    assert not Incident.objects.exists()

    sweep_due_checks(now=t0 + DAY + 2 * HOUR)
    check.refresh_from_db()
    assert check.status == Check.Status.DOWN
    incident = Incident.objects.get()
    assert incident.kind == Incident.Kind.MISSED_HEARTBEAT
    assert incident.opened_at == t0 + DAY + HOUR + timedelta(seconds=5)
    deliver_all(t0 + DAY + 2 * HOUR)
    assert [m.subject for m in mail.outbox] == ["[Tocsin] DOWN nightly-backup (production)"]

    ping(check, now=t0 + DAY + 3 * HOUR)
    sweep_due_checks(now=t0 + DAY + 3 * HOUR + MIN)
    check.refresh_from_db()
    incident.refresh_from_db()
    assert check.status == Check.Status.UP
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution == Incident.Resolution.RECOVERED
    deliver_all(t0 + DAY + 3 * HOUR + MIN)
    assert mail.outbox[-1].subject == "[Tocsin] RESOLVED nightly-backup (production)"
    assert list(Flip.objects.order_by("happened_at").values_list("to_status", flat=True)) == [
        "up",
        "late",
        "down",
        "up",
    ]


def test_fail_ping_opens_failure_incident_with_exit_status_and_log_tail(check, owner, t0):
    ping(check, now=t0)
    ping(check, kind="fail", now=t0 + HOUR, exit_status=3, body=b"line 1\nerror: disk full\n")
    sweep_due_checks(now=t0 + HOUR + MIN)
    incident = Incident.objects.get()
    assert incident.kind == Incident.Kind.FAILURE_SIGNAL
    assert incident.details["exit_status"] == 3
    assert "error: disk full" in incident.details["body_tail"]
    deliver_all(t0 + HOUR + MIN)
    assert "exit status 3" in mail.outbox[0].body
    assert "error: disk full" in mail.outbox[0].body


def test_repeated_failures_keep_one_incident(check, owner, t0):
    for i in range(3):
        ping(check, kind="fail", now=t0 + i * MIN)
        sweep_due_checks(now=t0 + i * MIN + timedelta(seconds=1))
    assert Incident.objects.count() == 1
    assert Notification.objects.filter(event="down").count() == 1


def test_pings_count_and_store_body(check, t0):
    ping(check, kind="start", now=t0)
    ping(check, kind="log", now=t0, body=b"\xff\xfe not utf-8")
    assert Ping.objects.filter(owner=check).count() == 2
    stored = Ping.objects.get(kind="log")
    assert bytes(stored.body) == b"\xff\xfe not utf-8"
    check.refresh_from_db()
    assert check.n_pings == 2
    assert check.last_ping_at == t0
    assert check.alert_after == t0  # due now: the sweeper folds the pings in
    sweep_due_checks(now=t0 + MIN)
    check.refresh_from_db()
    assert check.status == Check.Status.NEW
    assert [run["start_n"] for run in check.open_runs] == [1]
    assert check.runs.get().outcome == "running"
