"""Grouping (the thundering herd): the rules as a table, then bursts of failing checks walked
through the real sweep, notify, flush and delivery with injected time."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.incidents.services import resolve_incident
from apps.notifications.delivery import deliver, due_delivery_ids
from apps.notifications.flush import flush_due_groups
from apps.notifications.grouping import (
    GroupingRules,
    group_due_at,
    group_key_for,
    retry_delay,
)
from apps.notifications.models import Delivery, Notification, TeamNotificationSettings
from tests.factories import CheckFactory

from .conftest import make_channel, tell, to_channel

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
T = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
RULES = GroupingRules("team", group_wait=30 * SECOND, group_interval=5 * MINUTE)


# --- rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group_by", "environment", "tags", "key"),
    [
        ("team", "production", ["db"], ""),
        ("environment", "production", ["db"], "production"),
        ("environment", "", ["db"], ""),
        ("tag", "production", ["web", "db"], "db"),
        ("tag", "production", [], ""),
    ],
    ids=["team", "environment", "no-environment", "first-tag-alphabetically", "untagged"],
)
def test_group_key(group_by, environment, tags, key):
    assert group_key_for(group_by=group_by, environment=environment, tags=tags) == key


@pytest.mark.parametrize(
    ("oldest", "last_message", "due"),
    [
        (T, None, T + 30 * SECOND),  # a new group waits group_wait
        (T, T - MINUTE, T + 4 * MINUTE),  # a follow-up waits for the interval
        (T, T - 10 * MINUTE, T + 30 * SECOND),  # a quiet group starts afresh
        (T, T - 5 * MINUTE + 10 * SECOND, T + 30 * SECOND),  # whichever is later
    ],
    ids=["first", "follow-up", "quiet-group", "wait-is-later"],
)
def test_group_due_at(oldest, last_message, due):
    assert group_due_at(oldest_pending_at=oldest, last_message_at=last_message, rules=RULES) == due


def test_a_zero_interval_turns_follow_up_batching_off():
    rules = GroupingRules("team", group_wait=timedelta(0), group_interval=timedelta(0))
    # Even a last message "after" the pending one (clocks that disagree) holds nothing back.
    assert group_due_at(oldest_pending_at=T, last_message_at=T + MINUTE, rules=rules) == T


@pytest.mark.parametrize(
    ("failures", "jitter", "delay"),
    [
        (1, 0.0, 5),
        (1, 0.999, 9.995),
        (2, 0.0, 10),
        (3, 0.5, 30),
        (10, 0.0, 1800),  # capped at one hour, half of it fixed
        (10, 1.0, 3600),
        (200, 0.0, 1800),  # no overflow for absurd counts
    ],
)
def test_retry_delay_doubles_up_to_the_cap_with_jitter(failures, jitter, delay):
    got = retry_delay(failures, base=10 * SECOND, cap=timedelta(hours=1), jitter=jitter)
    assert got == timedelta(seconds=delay)


# --- bursts -------------------------------------------------------------------------------


@pytest.fixture
def grouping(settings):
    """The production defaults: 30 s wait, 5 min interval (tests/conftest.py turns the wait off
    for tests that are not about grouping)."""
    settings.NOTIFICATION_GROUP_WAIT = 30 * SECOND
    settings.NOTIFICATION_GROUP_INTERVAL = 5 * MINUTE


def fail(checks, now):
    for check in checks:
        record_ping(
            ping=PingData(kind="fail", method="POST", exit_status=1),
            token=check.ping_token,
            now=now,
        )
    sweep_due_checks(now=now)


def send_due(now):
    flush_due_groups(now=now)
    return [deliver(delivery_id=i, now=now, jitter=0) for i in due_delivery_ids(now=now)]


def tell_channel_about_everything(channel, now):
    for incident in Incident.objects.filter(owner__team=channel.team):
        tell(incident, to_channel(channel), now=now)


def test_fifty_checks_down_inside_the_window_make_one_notification_per_target(
    grouping, team, member, receiver
):
    checks = [CheckFactory(team=team, name=f"job-{n:02}", environment="") for n in range(50)]
    channel = make_channel(team, "webhook", url=receiver.url())
    # They fail over 20 seconds, in five sweeps.
    for batch in range(5):
        now = T + batch * 5 * SECOND
        fail(checks[batch * 10 : (batch + 1) * 10], now)
        for incident in Incident.objects.filter(owner__in=checks[batch * 10 : (batch + 1) * 10]):
            tell(incident, to_channel(channel), now=now)

    assert send_due(T + 29 * SECOND) == []
    assert mail.outbox == [] and receiver.requests == []

    sent = send_due(T + 30 * SECOND)
    assert len(sent) == 2 and all(s.endswith("sent") for s in sent)
    (request,) = receiver.requests
    payload = request.json()
    assert payload["count"] == 50
    assert payload["summary"].startswith("50 checks down: job-00, job-01, job-02")
    assert payload["summary"].endswith("and 45 more")
    assert sorted(i["check"]["name"] for i in payload["incidents"]) == [c.name for c in checks]
    (email,) = mail.outbox
    assert email.to == [member.email]
    assert email.subject.startswith("[Tocsin] 50 checks down: job-00")
    for check in checks:
        assert f"{check.name} is DOWN." in email.body
    assert email.body.count("Acknowledge: https://tocsin.example/a/") == 50
    assert Notification.objects.filter(status="sent").count() == 100
    assert Delivery.objects.count() == 2


def test_two_hundred_checks_failing_together_make_a_handful_of_messages(
    grouping, team, member, owner
):
    TeamNotificationSettings.objects.create(team=team, group_by="environment")
    environments = ["production", "staging", "dev"]
    checks = [
        CheckFactory(team=team, name=f"job-{n:03}", environment=environments[n % 3])
        for n in range(200)
    ]
    fail(checks, T)
    assert Notification.objects.count() == 400  # one per check and member: owed, not sent

    send_due(T + 30 * SECOND)
    # One message per environment and member: 6 emails for 200 incidents.
    assert len(mail.outbox) == 6
    per_environment = {}
    for email in mail.outbox:
        per_environment.setdefault(email.to[0], []).append(email.subject)
    assert set(per_environment) == {member.email, owner.email}
    for subjects in per_environment.values():
        assert sorted(s.split(": ")[0] for s in subjects) == [
            "[Tocsin] 66 checks down",
            "[Tocsin] 67 checks down",
            "[Tocsin] 67 checks down",
        ]


def test_checks_failing_later_are_batched_into_follow_ups_every_interval(grouping, team, receiver):
    checks = [CheckFactory(team=team, name=f"job-{n}", environment="") for n in range(6)]
    channel = make_channel(team, "slack", url=receiver.url())
    fail(checks[:2], T)
    tell_channel_about_everything(channel, T)
    send_due(T + 30 * SECOND)
    assert len(receiver.requests) == 1

    # Two more fail 1 minute later, one more at 3 minutes: held until the interval is over.
    fail(checks[2:4], T + MINUTE)
    tell_channel_about_everything(channel, T + MINUTE)
    fail(checks[4:5], T + 3 * MINUTE)
    tell_channel_about_everything(channel, T + 3 * MINUTE)
    for moment in (T + 2 * MINUTE, T + 5 * MINUTE):
        send_due(moment)
        assert len(receiver.requests) == 1
    send_due(T + 30 * SECOND + 5 * MINUTE)
    assert len(receiver.requests) == 2
    follow_up = receiver.requests[1].json()
    assert follow_up["text"].startswith("*3 checks down: job-2, job-3, job-4*")

    # A long quiet time later, a new failure is a new group: it waits only group_wait.
    later = T + 30 * MINUTE
    fail(checks[5:], later)
    tell_channel_about_everything(channel, later)
    send_due(later + 29 * SECOND)
    assert len(receiver.requests) == 2
    send_due(later + 30 * SECOND)
    assert len(receiver.requests) == 3
    assert "job-5" in receiver.requests[2].json()["text"]


def test_groups_are_per_target_and_per_key(grouping, team, member, receiver):
    TeamNotificationSettings.objects.create(team=team, group_by="tag")
    db_checks = [CheckFactory(team=team, name=f"db-{n}", tags="db") for n in range(3)]
    web_check = CheckFactory(team=team, name="web", tags="web")
    channel = make_channel(team, "webhook", url=receiver.url())
    fail([*db_checks, web_check], T)
    tell_channel_about_everything(channel, T)
    send_due(T + 30 * SECOND)
    counts = sorted(r.json()["count"] for r in receiver.requests)
    assert counts == [1, 3]
    assert sorted(m.subject for m in mail.outbox) == [
        "[Tocsin] 3 checks down: db-0 (production), db-1 (production), db-2 (production)",
        "[Tocsin] DOWN web (production)",
    ]


def test_an_incident_resolved_inside_the_window_is_never_announced(grouping, team, member, owner):
    check = CheckFactory(team=team, name="blip")
    fail([check], T)
    incident = Incident.objects.get(owner=check)
    resolve_incident(incident_id=incident.id, user=owner, now=T + 10 * SECOND)
    send_due(T + MINUTE)
    # Neither "down" nor "resolved": nobody heard of it, nobody needs to hear it is over.
    assert mail.outbox == []
    assert set(Notification.objects.values_list("status", flat=True)) == {"skipped"}
    assert not Delivery.objects.exists()


def test_resolved_goes_only_to_those_who_were_told(grouping, team, member, owner, receiver):
    told, untold = (
        make_channel(team, "webhook", url=receiver.url("/told")),
        make_channel(team, "webhook", url=receiver.url("/untold")),
    )
    check = CheckFactory(team=team, name="nightly")
    fail([check], T)
    incident = Incident.objects.get(owner=check)
    tell(incident, to_channel(told), now=T)
    send_due(T + 30 * SECOND)
    resolve_incident(incident_id=incident.id, user=owner, now=T + 10 * MINUTE)
    send_due(T + 11 * MINUTE)
    assert [r.path for r in receiver.requests] == ["/told", "/told"]
    assert [i["event"] for i in receiver.requests[1].json()["incidents"]] == ["resolved"]
    assert sorted(m.subject for m in mail.outbox) == [
        "[Tocsin] DOWN nightly (production)",
        "[Tocsin] DOWN nightly (production)",
        "[Tocsin] RESOLVED nightly (production)",
        "[Tocsin] RESOLVED nightly (production)",
    ]
    assert not Notification.objects.filter(channel=untold).exists()


def test_a_channel_disabled_before_its_group_goes_out_is_skipped_not_failed(
    grouping, team, receiver, mailoutbox
):
    check = CheckFactory(team=team, name="nightly")
    channel = make_channel(team, "webhook", url=receiver.url())
    fail([check], T)
    tell_channel_about_everything(channel, T)
    channel.is_enabled = False
    channel.save()
    send_due(T + MINUTE)
    assert Notification.objects.get(channel=channel).status == "skipped"
    assert not Delivery.objects.exists()
    assert receiver.requests == [] and mailoutbox == []


def test_a_big_group_fits_slack_and_mattermost_limits(grouping, team, receiver):
    checks = [CheckFactory(team=team, name=f"job-{n:02}", environment="") for n in range(40)]
    channel = make_channel(team, "slack", url=receiver.url())
    for check in checks:
        record_ping(
            ping=PingData(kind="fail", method="POST", exit_status=1, body=b"x" * 5000 + b"\n"),
            token=check.ping_token,
            now=T,
        )
    sweep_due_checks(now=T)
    tell_channel_about_everything(channel, T)
    send_due(T + 30 * SECOND)
    (request,) = receiver.requests
    payload = request.json()
    assert len(payload["blocks"]) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in payload["blocks"] if "text" in b)
    assert len(payload["text"]) <= 15_000
    assert payload["text"].startswith("*40 checks down: job-00, job-01")
    # Nine in detail, the others listed as links in a last section, cut between links.
    assert payload["blocks"][-1]["text"]["text"].startswith("…and 31 more: <https://")
    for check in checks:
        assert f"|{check.name}>" in request.body.decode()


@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_put_each_notification_into_one_message(grouping, team, member):
    checks = [CheckFactory(team=team, name=f"job-{n:02}") for n in range(50)]
    fail(checks, T)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def flush():
        try:
            barrier.wait()
            results.append(flush_due_groups(now=T + MINUTE))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=flush) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(len(r.deliveries) for r in results) == 1
    (delivery,) = Delivery.objects.all()
    assert delivery.notifications.count() == 50
    assert not Notification.objects.filter(delivery__isnull=True).exists()
