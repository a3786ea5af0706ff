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
    NewsKind,
    PendingNews,
    group_due_at,
    group_key_for,
    news_due_at,
    news_kind,
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


NEW, FOLLOW_UP, UPDATE = NewsKind.NEW, NewsKind.FOLLOW_UP, NewsKind.UPDATE


@pytest.mark.parametrize(
    ("kind", "last_message", "due"),
    [
        (NEW, None, T),  # the first failure of a burst goes out at once
        (NEW, T - 10 * SECOND, T + 30 * SECOND),  # it joins a burst being told
        (NEW, T - 30 * SECOND, T),  # the burst closed with the wait
        (NEW, T - MINUTE, T),  # never the interval for a new failure
        (NEW, T + SECOND, T + 30 * SECOND),  # it missed a message while uncommitted
        (FOLLOW_UP, None, T + 30 * SECOND),
        (FOLLOW_UP, T - MINUTE, T + 30 * SECOND),  # a recovery waits the wait, no more
        (UPDATE, T - MINUTE, T + 4 * MINUTE),  # a reminder waits for the interval
        (UPDATE, T - 10 * MINUTE, T + 30 * SECOND),  # a quiet group: the wait only
        (UPDATE, None, T + 30 * SECOND),
    ],
    ids=[
        "new-alone",
        "new-joins-burst",
        "new-after-burst",
        "new-inside-interval",
        "new-missed-message",
        "follow-up-alone",
        "follow-up-inside-interval",
        "update-inside-interval",
        "update-quiet-group",
        "update-first",
    ],
)
def test_news_due_at(kind, last_message, due):
    news = PendingNews(created_at=T, kind=kind)
    assert news_due_at(news, last_message_at=last_message, rules=RULES) == due


@pytest.mark.parametrize(
    ("event", "told", "kind"),
    [
        ("down", False, NEW),
        ("unsilenced", False, NEW),
        ("retriggered", True, NEW),
        ("escalation", False, NEW),
        ("escalation", True, UPDATE),
        ("reminder", True, UPDATE),
        ("resolved", True, FOLLOW_UP),
        ("acknowledged", True, FOLLOW_UP),
    ],
    ids=lambda v: str(v),
)
def test_news_kind(event, told, kind):
    assert news_kind(event=event, target_was_told=told) == kind


def test_a_group_is_due_at_its_earliest_row():
    pending = [
        PendingNews(created_at=T, kind=UPDATE),
        PendingNews(created_at=T + 5 * SECOND, kind=NEW),
    ]
    # The new failure joins the burst of T - 10 s: due at T + 35 s; the reminder rides along.
    assert group_due_at(pending, last_message_at=T - 10 * SECOND, rules=RULES) == T + 35 * SECOND
    assert group_due_at([], last_message_at=None, rules=RULES) is None


def test_zero_wait_and_interval_hold_nothing_back():
    rules = GroupingRules("team", group_wait=timedelta(0), group_interval=timedelta(0))
    for kind in NewsKind:
        news = PendingNews(created_at=T, kind=kind)
        # Even a last message "after" the pending one (clocks that disagree) holds nothing.
        assert news_due_at(news, last_message_at=T + MINUTE, rules=rules) == T


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


def test_fifty_checks_failing_over_twenty_seconds_make_two_messages_per_target(
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
        if batch == 0:
            # The first ten open the burst: due at once, one message per target.
            assert len(send_due(now)) == 2

    assert receiver.requests[0].json()["count"] == 10
    assert mail.outbox[0].subject.startswith("[Tocsin] 10 checks down: job-00")
    # The other forty joined the burst: one follow-up, the wait after the first of them.
    assert send_due(T + 34 * SECOND) == []
    sent = send_due(T + 35 * SECOND)
    assert len(sent) == 2 and all(s.endswith("sent") for s in sent)
    payload = receiver.requests[1].json()
    assert payload["count"] == 40
    assert payload["summary"].startswith("40 checks down: job-10, job-11, job-12")
    assert payload["summary"].endswith("and 35 more")
    named = [i["check"]["name"] for r in receiver.requests for i in r.json()["incidents"]]
    assert sorted(named) == [c.name for c in checks]
    first, follow_up = mail.outbox
    assert first.to == follow_up.to == [member.email]
    assert follow_up.subject.startswith("[Tocsin] 40 checks down: job-10")
    for check in checks:
        assert f"{check.name} is DOWN." in first.body + follow_up.body
    assert (first.body + follow_up.body).count("Acknowledge: https://tocsin.example/a/") == 50
    assert Notification.objects.filter(status="sent").count() == 100
    assert Delivery.objects.count() == 4


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


def test_checks_failing_later_are_told_within_the_wait_never_the_interval(grouping, team, receiver):
    checks = [CheckFactory(team=team, name=f"job-{n}", environment="") for n in range(6)]
    channel = make_channel(team, "slack", url=receiver.url())
    fail(checks[:2], T)
    tell_channel_about_everything(channel, T)
    send_due(T)
    assert len(receiver.requests) == 1

    # Two more fail a minute later: the burst is over, they go out at once.
    fail(checks[2:4], T + MINUTE)
    tell_channel_about_everything(channel, T + MINUTE)
    send_due(T + MINUTE)
    assert len(receiver.requests) == 2
    assert receiver.requests[1].json()["text"].startswith("*2 checks down: job-2, job-3*")

    # Two more 10 s and 20 s after that message: they join one follow-up after the wait.
    fail(checks[4:5], T + MINUTE + 10 * SECOND)
    tell_channel_about_everything(channel, T + MINUTE + 10 * SECOND)
    fail(checks[5:], T + MINUTE + 20 * SECOND)
    tell_channel_about_everything(channel, T + MINUTE + 20 * SECOND)
    send_due(T + MINUTE + 39 * SECOND)
    assert len(receiver.requests) == 2
    send_due(T + MINUTE + 40 * SECOND)
    assert len(receiver.requests) == 3
    assert receiver.requests[2].json()["text"].startswith("*2 checks down: job-4, job-5*")


def test_reminders_are_batched_by_the_interval(grouping, team, receiver):
    checks = [CheckFactory(team=team, name=f"job-{n}", environment="") for n in range(2)]
    channel = make_channel(team, "webhook", url=receiver.url())
    fail(checks, T)
    tell_channel_about_everything(channel, T)
    send_due(T)
    for incident in Incident.objects.filter(owner__in=checks):
        tell(incident, to_channel(channel), now=T + MINUTE, event="reminder", round=0, step=1)
    # The channel knows of both incidents: reminders wait for the interval after the message.
    send_due(T + 5 * MINUTE - SECOND)
    assert len(receiver.requests) == 1
    send_due(T + 5 * MINUTE)
    assert len(receiver.requests) == 2
    assert receiver.requests[1].json()["count"] == 2


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
    # Another check's message opened a burst; "blip" joins it, and resolves inside the wait.
    fail([CheckFactory(team=team, name="first")], T - 10 * SECOND)
    send_due(T - 10 * SECOND)
    mail.outbox.clear()
    check = CheckFactory(team=team, name="blip")
    fail([check], T)
    incident = Incident.objects.get(owner=check)
    resolve_incident(incident_id=incident.id, user=owner, now=T + 10 * SECOND)
    send_due(T + MINUTE)
    # Neither "down" nor "resolved": nobody heard of it, nobody needs to hear it is over.
    assert mail.outbox == []
    mine = Notification.objects.filter(incident__owner=check)
    assert set(mine.values_list("status", flat=True)) == {"skipped"}
    assert not Delivery.objects.filter(notifications__incident__owner=check).exists()


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
    # A first failure is told at once (the flush after the sweep's commit); fifty more join
    # its burst, so they wait for the flushes below.
    fail([CheckFactory(team=team, name="first")], T - 10 * SECOND)
    first = Delivery.objects.get()
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
    (delivery,) = Delivery.objects.exclude(id=first.id)
    assert delivery.notifications.count() == 50
    assert not Notification.objects.filter(delivery__isnull=True).exists()
