"""No input may stop a check from being judged (issue 14).

A NUL byte in a failure's body used to jam its check for good: the body tail went into the
incident's jsonb details, PostgreSQL refused it, and every later sweep failed the same way.
Text is now made storable at the edge, and a check whose evaluation raises anyway skips the
ping that caused it, records the failure (check page, /healthz) and tells the team's admins.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection  # noqa: F401 (read by requires_postgres)
from django.urls import reverse

from apps.checks.models import Check, Ping
from apps.checks.pings import PingData, record_ping
from apps.checks.quarantine import (
    PING_ERROR,
    REPORT_INTERVAL,
    RETRY_BROKEN_CHECK_AFTER,
    report_evaluation_failure,
)
from apps.checks.storable import decode_storable, storable_text
from apps.checks.sweeper import sweep_due_checks
from apps.checks.tasks import sweep_due_checks_task
from apps.clock import database_now
from apps.incidents.models import Incident
from apps.teams.models import Membership
from tests.checks.test_sweeper import purge_task_queue  # noqa: F401 (a fixture)
from tests.conftest import requires_postgres
from tests.factories import CheckFactory, MembershipFactory
from tests.live import fetch

MIN = timedelta(minutes=1)
JAMMING_BODY = b"backup failed\n\x00junk\n"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("plain", "plain"),
        ("nul\x00inside", "nul\ufffdinside"),
        ("lone \ud800 high", "lone \ufffd high"),
        ("lone \udfff low", "lone \ufffd low"),
        ("\x00\x00", "\ufffd\ufffd"),
        ("emoji \U0001f600 stays", "emoji \U0001f600 stays"),
    ],
    ids=["plain", "nul", "high-surrogate", "low-surrogate", "only-nuls", "astral"],
)
def test_storable_text_replaces_what_postgresql_text_refuses(raw, stored):
    assert storable_text(raw) == stored


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (b"ok\n", "ok\n"),
        (JAMMING_BODY, "backup failed\n\ufffdjunk\n"),
        (b"bad utf-8 \xff\xfe end", "bad utf-8 \ufffd\ufffd end"),
        (b"cut \xe2\x82", "cut \ufffd"),
        (b"surrogate-escaped \xed\xa0\x80", "surrogate-escaped \ufffd\ufffd\ufffd"),
    ],
    ids=["utf-8", "nul", "invalid", "truncated-sequence", "encoded-surrogate"],
)
def test_bodies_decode_to_storable_text(raw, stored):
    assert decode_storable(raw) == stored


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purge_task_queue")
def test_nul_in_a_failure_body_opens_an_incident_and_a_success_recovers_it(
    live_app_url,
    team,
):
    """The exact repro of issue 14, through the production WSGI app and the real sweep."""
    check = CheckFactory(team=team)
    fail = fetch(live_app_url, "POST", f"/ping/{check.ping_token}/fail", body=JAMMING_BODY)
    assert fail.status == 200
    assert bytes(Ping.objects.get(owner=check).body) == JAMMING_BODY  # the bytes stay raw

    first = sweep_due_checks(now=database_now())

    assert first.errors == []
    check.refresh_from_db()
    assert check.status == Check.Status.DOWN
    incident = Incident.objects.get(owner=check)
    assert incident.resolved_at is None
    assert incident.details["body_tail"] == "backup failed\n\ufffdjunk"

    ok = fetch(live_app_url, "POST", f"/ping/{check.ping_token}", body=b"backup ok\n")
    assert ok.status == 200
    second = sweep_due_checks(now=database_now())

    assert second.errors == []
    check.refresh_from_db()
    incident.refresh_from_db()
    assert check.status == Check.Status.UP
    assert incident.resolved_at is not None
    assert incident.resolution == Incident.Resolution.RECOVERED
    assert check.processed_n == check.n_pings == 2
    assert check.evaluation_failed_at is None


@pytest.mark.parametrize(
    "header",
    ["agent\x00with nul", "agent \ud800 surrogate", "\x00" * 500],
    ids=["nul", "surrogate", "long-nuls"],
)
def test_hostile_user_agents_are_stored_replaced(client, check, header):
    response = client.post(
        f"/ping/{check.ping_token}/fail",
        data=JAMMING_BODY,
        content_type="application/octet-stream",
        HTTP_USER_AGENT=header,
    )
    assert response.status_code == 200
    ping = Ping.objects.get(owner=check)
    assert ping.user_agent == storable_text(header, 200)
    assert "\x00" not in ping.user_agent
    assert bytes(ping.body) == JAMMING_BODY


@pytest.mark.parametrize(
    "path",
    ["/ping/key\x00/slug", "/ping/key/sl\x00ug", "/ping/key/sl\ud800ug?create=1"],
    ids=["nul-key", "nul-slug", "surrogate-slug"],
)
def test_unstorable_key_or_slug_is_not_found(team, path):
    from apps.checks.ping_endpoint import handle_ping

    answer = handle_ping(
        method="GET",
        path=path.split("?")[0],
        query_string=path.partition("?")[2],
        body=b"",
        body_truncated=False,
        remote_addr="127.0.0.1",
        user_agent="",
    )
    assert answer.status == 404
    assert not Check.objects.exists()


def record(check, kind, at, *, body=b"") -> int:
    assert record_ping(
        ping=PingData(kind=kind, method="POST", body=body), token=check.ping_token, now=at
    )
    return Ping.objects.filter(owner=check).order_by("-n").values_list("n", flat=True).first()


def corrupt(check, n: int) -> None:
    """A ping row the rules cannot read (a kind this version does not know: a newer release
    wrote it, or a hand edit); no constraint stops it, and folding it raises."""
    Ping.objects.filter(owner=check, n=n).update(kind="bogus")


def test_a_ping_that_cannot_be_folded_is_skipped_and_the_others_are_judged(team, t0):
    check = CheckFactory(team=team)
    record(check, Ping.Kind.SUCCESS, t0)
    bad = record(check, Ping.Kind.SUCCESS, t0 + MIN)
    record(check, Ping.Kind.FAIL, t0 + 2 * MIN, body=b"disk full")
    corrupt(check, bad)

    first = sweep_due_checks(now=t0 + 3 * MIN)

    assert len(first.errors) == 1 and first.errors[0].startswith(str(check.id))
    assert first.failures_to_report == [str(check.id)]
    outcomes = dict(Ping.objects.filter(owner=check).values_list("n", "outcome"))
    assert outcomes[bad] == PING_ERROR
    assert outcomes[1] == "success"  # folded before the bad one, and kept
    check.refresh_from_db()
    assert check.processed_n == bad
    assert check.alert_after == t0 + 3 * MIN  # due again at once, for the ping after it
    assert check.evaluation_failed_at == t0 + 3 * MIN
    assert f"ping #{bad} skipped" in check.evaluation_error
    assert "bogus" in check.evaluation_error

    second = sweep_due_checks(now=t0 + 3 * MIN + timedelta(seconds=5))

    assert second.errors == [] and second.failures_to_report == []
    check.refresh_from_db()
    assert check.status == Check.Status.DOWN
    assert check.processed_n == check.n_pings == 3
    assert Incident.objects.get(owner=check).details["body_tail"] == "disk full"


def test_a_bad_ping_behind_good_ones_is_found(team, t0):
    # The whole fold raises; the first pending ping alone folds fine: the search goes on one
    # ping at a time and keeps everything before the culprit.
    check = CheckFactory(team=team)
    numbers = [record(check, Ping.Kind.SUCCESS, t0 + i * MIN) for i in range(5)]
    corrupt(check, numbers[3])

    result = sweep_due_checks(now=t0 + 10 * MIN)

    assert len(result.errors) == 1
    check.refresh_from_db()
    assert check.processed_n == numbers[3]
    outcomes = dict(Ping.objects.filter(owner=check).values_list("n", "outcome"))
    assert [outcomes[n] for n in numbers[:4]] == ["success"] * 3 + [PING_ERROR]
    assert sweep_due_checks(now=t0 + 11 * MIN).errors == []
    check.refresh_from_db()
    assert check.processed_n == check.n_pings == 5
    assert check.status == Check.Status.UP


def test_a_check_whose_own_state_is_broken_keeps_its_pings(team, t0):
    check = CheckFactory(team=team)
    record(check, Ping.Kind.SUCCESS, t0)
    Check.objects.filter(id=check.id).update(eval_state={"last_checkin_at": "yesterday"})

    result = sweep_due_checks(now=t0 + MIN)

    assert len(result.errors) == 1 and result.failures_to_report == [str(check.id)]
    check.refresh_from_db()
    assert check.processed_n == 0  # nothing skipped: the ping is not to blame
    assert Ping.objects.get(owner=check).outcome == ""
    assert check.alert_after == t0 + MIN + RETRY_BROKEN_CHECK_AFTER
    assert check.evaluation_error.startswith("ValueError")
    assert check.evaluation_failed_at == t0 + MIN


def test_the_team_is_told_once_per_interval(team, t0):
    check = CheckFactory(team=team)
    for i in range(3):
        corrupt(check, record(check, Ping.Kind.SUCCESS, t0 + i * MIN))

    sweeps = [sweep_due_checks(now=t0 + (10 + i) * MIN) for i in range(3)]

    assert [len(s.errors) for s in sweeps] == [1, 1, 1]
    assert [s.failures_to_report for s in sweeps] == [[str(check.id)], [], []]
    later = record(check, Ping.Kind.SUCCESS, t0 + REPORT_INTERVAL)
    corrupt(check, later)
    again = sweep_due_checks(now=t0 + 15 * MIN + REPORT_INTERVAL)
    assert again.failures_to_report == [str(check.id)]
    assert set(Ping.objects.filter(owner=check).values_list("outcome", flat=True)) == {PING_ERROR}


def test_the_report_goes_to_owners_and_admins_only(team, owner, member, viewer, t0):
    admin = MembershipFactory(team=team, role=Membership.Role.ADMIN).user
    check = CheckFactory(team=team, name="nightly-backup")
    corrupt(check, record(check, Ping.Kind.FAIL, t0, body=JAMMING_BODY))
    sweep_due_checks(now=t0 + MIN)

    assert report_evaluation_failure(str(check.id)) is True

    (message,) = mail.outbox
    assert sorted(message.to) == sorted([owner.email, admin.email])
    assert message.subject == "[Tocsin] nightly-backup could not be evaluated"
    assert "ping #1 skipped" in message.body
    assert f"https://tocsin.example/checks/{check.id}/" in message.body


def test_no_report_for_a_check_that_never_failed_or_is_gone(check):
    assert report_evaluation_failure(str(check.id)) is False
    check_id = str(check.id)
    check.delete()
    assert report_evaluation_failure(check_id) is False
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purge_task_queue")
def test_the_sweep_task_reports_through_the_worker(
    celery_worker,
    team,
    owner,
):
    check = CheckFactory(team=team, name="nightly-backup")
    corrupt(check, record(check, Ping.Kind.SUCCESS, None))

    with celery_worker.exclusive():
        summary = sweep_due_checks_task()
        assert mail.outbox == []  # the sweep itself never sends it

    celery_worker.wait_for(lambda: len(mail.outbox) == 1, what="the evaluation failure report")
    assert summary.startswith("swept 1")
    assert mail.outbox[0].to == [owner.email]
    assert "could not be evaluated" in mail.outbox[0].subject


def test_the_check_page_and_healthz_show_the_failure(owner_client, check, t0):
    corrupt(check, record(check, Ping.Kind.SUCCESS, t0))
    sweep_due_checks(now=database_now())

    page = owner_client.get(reverse("dashboard:check-detail", args=[check.id]))
    html = page.content.decode()
    assert 'id="evaluation-error"' in html and "ping #1 skipped" in html
    assert 'data-outcome="error"' in html

    health = owner_client.get("/healthz")
    assert health.status_code == 503
    evaluation = health.json()["evaluation"]
    assert evaluation["ok"] is False
    assert evaluation["failed_lately"]["checks"] == 1
    assert "ping #1 skipped" in evaluation["failed_lately"]["latest_error"]


def test_healthz_reports_no_evaluation_failure_when_there_is_none(client, check):
    evaluation = client.get("/healthz").json()["evaluation"]
    assert evaluation == {
        "ok": True,
        "failed_lately": {"checks": 0, "latest_at": None, "latest_error": ""},
    }
