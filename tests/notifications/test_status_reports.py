"""Status reports: content for a month with known flips, periods in the reader's zone, one
report per period however many runs race for it, the unsubscribe link."""

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connections
from django.urls import reverse

from apps.checks.models import Check, Flip, Run
from apps.incidents.models import Incident
from apps.notifications.models import StatusReport
from apps.notifications.status_reports import send_due_reports, send_report_if_due
from apps.notifications.tasks import send_status_reports_task
from apps.teams.models import Membership, UserSettings
from apps.teams.report_tokens import make_unsubscribe_token
from tests.factories import CheckFactory, MembershipFactory, TeamFactory

JOINED = datetime(2026, 1, 1, tzinfo=UTC)
# Riga is UTC+2 in November: its November is [31 Oct 22:00 UTC, 30 Nov 22:00 UTC).
NOV_START = datetime(2026, 10, 31, 22, 0, tzinfo=UTC)
NOV_END = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _person(team, username="alice", zone="Europe/Riga", frequency="monthly"):
    user = MembershipFactory(
        team=team, role=Membership.Role.OWNER, user__username=username, user__date_joined=JOINED
    ).user
    UserSettings.objects.create(user=user, display_timezone=zone, report_frequency=frequency)
    return user


def _flips(check, *moments):
    status = "up"
    for at, to_status in moments:
        Flip.objects.create(
            owner=check, from_status=status, to_status=to_status, happened_at=at, reason="test"
        )
        status = to_status


def _run(check, ended_at, duration):
    Run.objects.create(
        owner=check,
        started_at=ended_at - duration,
        ended_at=ended_at,
        duration=duration,
        outcome="success",
    )


@pytest.fixture
def month_of_flips(db):
    """A team whose one check had a known November (and October) in Riga."""
    team = TeamFactory(name="Ops", slug="ops")
    check = CheckFactory(team=team, name="nightly-backup", status=Check.Status.DOWN)
    _flips(
        check,
        (datetime(2026, 9, 1, tzinfo=UTC), "up"),
        # October: 7 seconds.
        (datetime(2026, 10, 15, 10, 0, 0, tzinfo=UTC), "down"),
        (datetime(2026, 10, 15, 10, 0, 7, tzinfo=UTC), "up"),
        # November: 2 h 34 min 56 s ...
        (datetime(2026, 11, 3, 10, 0, 0, tzinfo=UTC), "down"),
        (datetime(2026, 11, 3, 12, 34, 56, tzinfo=UTC), "up"),
        # ... 1 h, then paused for two days (not downtime) ...
        (datetime(2026, 11, 10, 0, 0, 0, tzinfo=UTC), "down"),
        (datetime(2026, 11, 10, 1, 0, 0, tzinfo=UTC), "paused"),
        (datetime(2026, 11, 12, 0, 0, 0, tzinfo=UTC), "new"),
        (datetime(2026, 11, 12, 0, 5, 0, tzinfo=UTC), "up"),
        # ... and down 30 s before Riga's month ends, still down: 30 s in November.
        (NOV_END - timedelta(seconds=30), "down"),
    )
    for opened_at in (
        datetime(2026, 10, 15, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 3, 10, 0, tzinfo=UTC),
        NOV_END - timedelta(seconds=30),
        NOV_END,  # 1 December in Riga: not November's
    ):
        Incident.objects.create(
            owner=check,
            kind="missed_heartbeat",
            opened_at=opened_at,
            state=Incident.State.RESOLVED,
            resolved_at=opened_at + timedelta(seconds=1),
        )
    for day, duration in (
        (2, timedelta(minutes=5)),
        (4, timedelta(hours=1, minutes=2, seconds=3)),
        (6, timedelta(seconds=30)),
        (8, timedelta(minutes=10)),
    ):
        _run(check, datetime(2026, 11, day, 4, tzinfo=UTC), duration)
    _run(check, NOV_START - timedelta(seconds=1), timedelta(hours=5))  # 31 October in Riga
    return team, check


def test_monthly_report_content_with_downtime_to_the_second(month_of_flips):
    team, _ = month_of_flips
    user = _person(team)
    assert send_due_reports(now=NOW) == 1
    [message] = mail.outbox
    assert message.to == [user.email]
    assert message.subject == "Tocsin monthly report: November 2026"
    body = message.body
    assert "for November 2026 (Europe/Riga), with October 2026 in brackets" in body
    assert "== Ops ==" in body
    assert "nightly-backup — now down" in body
    assert "Incidents: 2 (1)" in body
    assert "Downtime: 3 h 35 min 26 s (7 s)" in body
    assert "Slowest runs: 1 h 2 min 3 s, 10 min 0 s, 5 min 0 s (5 h 0 min 0 s)" in body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "3 h 35 min 26 s (7 s)" in html and "<td>nightly-backup</td>" in html
    claim = StatusReport.objects.get()
    assert (claim.user, claim.frequency, claim.period_start, claim.period_end) == (
        user,
        "monthly",
        NOV_START,
        NOV_END,
    )


def test_the_same_month_in_utc_has_other_boundaries(month_of_flips):
    team, _ = month_of_flips
    _person(team, zone="")  # no zone chosen: UTC
    send_due_reports(now=NOW)
    body = mail.outbox[0].body
    assert "for November 2026 (UTC)" in body
    # The last 30 s down of Riga's November are 30 s + 2 h in UTC's; the incident at 22:00
    # UTC on 30 November is November's too.
    assert "Downtime: 5 h 35 min 26 s (7 s)" in body
    assert "Incidents: 3 (1)" in body


def test_no_report_before_the_local_month_is_over(month_of_flips):
    team, _ = month_of_flips
    _person(team, zone="America/New_York")  # 30 November 22:00 UTC is 17:00 there
    assert send_due_reports(now=datetime(2026, 12, 1, 4, 59, tzinfo=UTC)) == 1
    assert "October 2026" in mail.outbox[0].subject
    assert send_due_reports(now=datetime(2026, 12, 1, 5, 0, tzinfo=UTC)) == 1
    assert "November 2026" in mail.outbox[1].subject


def test_one_report_per_period_and_the_next_period_gets_its_own(month_of_flips):
    team, _ = month_of_flips
    _person(team, frequency="weekly")
    assert send_due_reports(now=NOW) == 1
    assert send_due_reports(now=NOW + timedelta(hours=1)) == 0
    assert mail.outbox[0].subject == "Tocsin weekly report: the week of 23 November 2026"
    # Monday 7 December 00:00 in Riga (+2) is Sunday 22:00 UTC.
    assert send_due_reports(now=datetime(2026, 12, 6, 22, 0, tzinfo=UTC)) == 1
    assert mail.outbox[1].subject == "Tocsin weekly report: the week of 30 November 2026"
    assert StatusReport.objects.count() == 2


def test_daily_report_and_who_gets_none(month_of_flips):
    team, _ = month_of_flips
    daily = _person(team, username="dora", frequency="daily")
    _person(team, username="otto", frequency="off")
    late = _person(team, username="newcomer")
    late.date_joined = NOW - timedelta(hours=1)  # joined after November ended
    late.save()
    no_checks = _person(TeamFactory(), username="idle")
    no_email = _person(team, username="silent")
    no_email.email = ""
    no_email.save()
    assert send_due_reports(now=NOW) == 1
    [message] = mail.outbox
    assert message.to == [daily.email]
    assert message.subject == "Tocsin daily report: 1 December 2026"
    assert not send_report_if_due(user=no_checks, now=NOW)


def test_a_person_in_two_teams_sees_both_and_not_a_third(month_of_flips):
    team, _ = month_of_flips
    user = _person(team)
    second = TeamFactory(name="Batch", slug="batch")
    MembershipFactory(team=second, user=user, role=Membership.Role.VIEWER)
    CheckFactory(team=second, name="import-orders")
    CheckFactory(team=TeamFactory(name="Elsewhere"), name="their-secret-job")
    send_due_reports(now=NOW)
    body = mail.outbox[0].body
    assert body.index("== Batch ==") < body.index("== Ops ==")
    assert "import-orders — now new" in body
    assert "their-secret-job" not in body


@pytest.mark.django_db(transaction=True)
def test_a_failed_send_releases_the_claim_for_the_next_run(month_of_flips, settings):
    team, _ = month_of_flips
    _person(team)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    assert send_due_reports(now=NOW) == 0  # nothing listens on port 9: refused
    assert StatusReport.objects.count() == 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send_due_reports(now=NOW) == 1
    assert len(mail.outbox) == 1


class SlowLocmemBackend(LocmemBackend):
    """locmem that takes a while, so that a racing run reaches its INSERT while the first
    one has claimed but not yet committed."""

    def send_messages(self, messages):
        time.sleep(0.5)
        return super().send_messages(messages)


@pytest.mark.django_db(transaction=True)
def test_two_beats_racing_send_each_report_once(month_of_flips, settings):
    team, _ = month_of_flips
    users = [_person(team, username=name) for name in ("alice", "bob", "carol")]
    settings.EMAIL_BACKEND = f"{__name__}.SlowLocmemBackend"
    start = threading.Barrier(2)
    results, errors = [], []

    def beat():
        try:
            start.wait()
            results.append(send_status_reports_task(as_of=NOW.isoformat()))
        except Exception as exc:  # reported below, with the thread's failure
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    sent = sorted(int(re.search(r"sent (\d+)", r)[1]) for r in results)
    assert sum(sent) == 3, results
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users)
    assert StatusReport.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_runs_on_a_real_worker(month_of_flips, celery_worker):
    team, _ = month_of_flips
    _person(team)
    with celery_worker.exclusive():
        send_status_reports_task.delay(as_of=NOW.isoformat())
    celery_worker.wait_for(lambda: len(mail.outbox) == 1, what="the report")
    assert mail.outbox[0].subject.endswith("November 2026")


# The unsubscribe link.


def _unsubscribe_path(message) -> str:
    url = re.search(r"Unsubscribe: (\S+)", message.body)[1]
    assert message.extra_headers["List-Unsubscribe"] == f"<{url}>"
    return url.removeprefix("https://tocsin.example")


def test_unsubscribe_link_shows_a_button_then_turns_reports_off(month_of_flips, client):
    team, _ = month_of_flips
    user = _person(team)
    send_due_reports(now=NOW)
    path = _unsubscribe_path(mail.outbox[0])
    page = client.get(path)
    assert page.status_code == 200 and b'id="unsubscribe"' in page.content
    assert UserSettings.objects.get(user=user).report_frequency == "monthly"  # GET changes nothing
    done = client.post(path)
    assert done.status_code == 200 and b'id="unsubscribed"' in done.content
    assert UserSettings.objects.get(user=user).report_frequency == "off"
    assert send_due_reports(now=datetime(2027, 1, 2, tzinfo=UTC)) == 0


def test_one_click_unsubscribe_needs_no_csrf_token(month_of_flips):
    from django.test import Client

    team, _ = month_of_flips
    user = _person(team)
    token = make_unsubscribe_token(user_id=user.pk)
    response = Client(enforce_csrf_checks=True).post(
        reverse("teams:unsubscribe-reports", args=[token]),
        {"List-Unsubscribe": "One-Click"},
    )
    assert response.status_code == 200
    assert UserSettings.objects.get(user=user).report_frequency == "off"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.replace(t.split(":")[0], "eyJ1Ijo5OTl9", 1),  # another user id, same signature
        lambda t: "not-a-token",
        lambda t: "x" * 2000,
    ],
    ids=["signature", "payload", "garbage", "oversized"],
)
def test_tampered_unsubscribe_token_is_refused(month_of_flips, client, tamper):
    team, _ = month_of_flips
    user = _person(team)
    token = tamper(make_unsubscribe_token(user_id=user.pk))
    response = client.post(reverse("teams:unsubscribe-reports", args=[token]))
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert UserSettings.objects.get(user=user).report_frequency == "monthly"


def test_expired_unsubscribe_token_is_refused(month_of_flips, client):
    team, _ = month_of_flips
    user = _person(team)
    with time_machine.travel("2026-08-01 00:00:00+00:00", tick=False):
        token = make_unsubscribe_token(user_id=user.pk)
    with time_machine.travel("2026-11-01 00:00:00+00:00", tick=False):  # 92 days later
        response = client.post(reverse("teams:unsubscribe-reports", args=[token]))
    assert response.status_code == 400
    assert b"expired" in response.content
    assert UserSettings.objects.get(user=user).report_frequency == "monthly"


def test_token_of_a_deleted_user_changes_nothing(month_of_flips, client):
    team, _ = month_of_flips
    user = _person(team)
    token = make_unsubscribe_token(user_id=user.pk)
    user.delete()
    response = client.post(reverse("teams:unsubscribe-reports", args=[token]))
    assert response.status_code == 400
    assert UserSettings.objects.count() == 0
