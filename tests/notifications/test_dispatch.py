"""The contract with escalation (apps/notifications/dispatch.py): who can be owed a notification,
exactly once per (incident, event, round, step, target), with no network I/O, and "resolved" or
"acknowledged" only to those who were told."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from apps.incidents.models import Incident
from apps.notifications.delivery import deliver
from apps.notifications.dispatch import (
    Recipient,
    notify,
    notify_acknowledged,
    notify_resolved,
)
from apps.notifications.flush import flush_due_groups
from apps.notifications.models import Delivery, Notification
from apps.teams.models import Membership
from tests.factories import MembershipFactory, UserFactory

from .conftest import fail_a_run, make_channel, tell, to_channel

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)


@pytest.fixture
def incident(check, t0):
    # The team has no members yet: the sweep's implicit policy writes nothing.
    return fail_a_run(check, t0)


def targets(**filters):
    return sorted(Notification.objects.filter(**filters).values_list("target", flat=True))


@pytest.mark.parametrize("kwargs", [{}, {"user_id": 1, "channel_id": 2}])
def test_a_recipient_is_a_user_or_a_channel(kwargs):
    with pytest.raises(ValueError, match="exactly one"):
        Recipient(**kwargs)


def test_unknown_events_are_refused(incident, t0):
    with pytest.raises(ValueError, match="unknown notification event"):
        tell(incident, now=t0, event="party")


def test_notify_writes_once_per_event_round_step_and_target(incident, team, t0):
    user = MembershipFactory(team=team).user
    channel = make_channel(team, "slack", url="https://93.184.216.34/x")
    both = [Recipient(user_id=user.id), to_channel(channel)]
    assert tell(incident, *both, now=t0) == 2
    assert tell(incident, *both, now=t0 + MINUTE) == 0  # a retried sweep
    assert tell(incident, *both, *both, now=t0, step=1) == 2  # duplicates in one call count once
    assert tell(incident, *both, now=t0, step=1, round=1) == 2
    assert tell(incident, *both, now=t0, event="reminder") == 2
    assert Notification.objects.count() == 8
    row = Notification.objects.get(target=f"user:{user.id}", step=0, round=0, event="down")
    assert (row.address, row.recipient, row.status, row.delivery) == (
        user.email,
        user,
        "pending",
        None,
    )
    assert Notification.objects.get(
        target=f"channel:{channel.id}", step=0, round=0, event="down"
    ).address == (channel.name)


def test_unreachable_targets_are_skipped(incident, team, other_team, t0):
    outsider = MembershipFactory(team=other_team).user
    stranger = UserFactory()
    inactive = MembershipFactory(team=team, user__is_active=False).user
    no_address = MembershipFactory(team=team, user__email="").user
    their_channel = make_channel(other_team, "slack", url="https://93.184.216.34/x")
    disabled = make_channel(team, "slack", url="https://93.184.216.34/y")
    disabled.is_enabled = False
    disabled.save()
    reachable = MembershipFactory(team=team, role=Membership.Role.VIEWER).user
    written = tell(
        incident,
        *[Recipient(user_id=u.id) for u in (outsider, stranger, inactive, no_address, reachable)],
        Recipient(user_id=987_654),
        to_channel(their_channel),
        to_channel(disabled),
        Recipient(channel_id=987_654),
        now=t0,
    )
    assert written == 1
    assert targets() == [f"user:{reachable.id}"]


def test_notify_does_no_io_and_flushes_news_due_at_once_after_commit(
    incident, team, t0, settings, django_capture_on_commit_callbacks
):
    user = MembershipFactory(team=team).user
    with django_capture_on_commit_callbacks() as callbacks:
        tell(incident, Recipient(user_id=user.id), now=t0)
        tell(incident, Recipient(user_id=user.id), now=t0, step=1)
    assert mail.outbox == [] and not Delivery.objects.exists()
    assert len(callbacks) == 1  # one flush for this team after commit, however many rows


def test_the_first_failure_of_a_burst_is_flushed_after_commit_despite_the_wait(
    incident, team, t0, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_GROUP_WAIT = timedelta(seconds=30)
    user = MembershipFactory(team=team).user
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tell(incident, Recipient(user_id=user.id), now=t0)
    # The flush after the commit, then the delivery task it enqueues after its own commit.
    assert [c.__qualname__.split(".")[0] for c in callbacks] == [
        "flush_after_commit",
        "enqueue_deliveries_after_commit",
    ]
    delivery = Delivery.objects.get()
    assert (delivery.created_at, delivery.next_attempt_at) == (t0, t0)
    assert delivery.notifications.get().target == f"user:{user.id}"


def test_news_inside_an_open_burst_waits_for_the_beats_flush(
    incident, team, t0, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_GROUP_WAIT = timedelta(seconds=30)
    user = MembershipFactory(team=team).user
    Delivery.objects.create(
        team=team,
        target=f"user:{user.id}",
        summary="an earlier message",
        created_at=t0,
        updated_at=t0,
    )
    with django_capture_on_commit_callbacks() as callbacks:
        tell(incident, Recipient(user_id=user.id), now=t0 + timedelta(seconds=10))
    assert callbacks == []
    assert flush_due_groups(now=t0 + timedelta(seconds=39)).deliveries == []
    assert len(flush_due_groups(now=t0 + timedelta(seconds=40)).deliveries) == 1


def test_resolved_goes_to_those_told_and_nobody_else(incident, team, t0):
    told = MembershipFactory(team=team).user
    never_told = MembershipFactory(team=team).user
    channel = make_channel(team, "webhook", url="https://93.184.216.34/x")
    tell(incident, Recipient(user_id=told.id), to_channel(channel), now=t0)
    tell(incident, Recipient(user_id=told.id), now=t0, step=1)  # told twice, resolved once
    assert notify_resolved(incident=incident, now=t0 + MINUTE) == 2
    assert notify_resolved(incident=incident, now=t0 + 2 * MINUTE) == 0
    assert targets(event="resolved") == sorted([f"user:{told.id}", f"channel:{channel.id}"])
    assert not Notification.objects.filter(recipient=never_told).exists()


def test_acknowledged_goes_to_the_others_once_per_acknowledgment(incident, team, t0):
    acker = MembershipFactory(team=team).user
    other = MembershipFactory(team=team).user
    tell(incident, Recipient(user_id=acker.id), Recipient(user_id=other.id), now=t0)
    assert notify_acknowledged(incident=incident, by_user=acker, now=t0 + MINUTE) == 1
    assert targets(event="acknowledged") == [f"user:{other.id}"]
    # Re-triggered by an acknowledgment timeout and acknowledged again: a new round.
    assert notify_acknowledged(incident=incident, by_user=acker, now=t0 + 2 * MINUTE) == 1
    assert sorted(
        Notification.objects.filter(event="acknowledged").values_list("round", flat=True)
    ) == [0, 1]


def test_an_escalation_email_says_which_step(incident, team, t0):
    user = MembershipFactory(team=team).user
    tell(incident, Recipient(user_id=user.id), now=t0, event="escalation", step=1, round=1)
    flush_due_groups(now=t0)
    deliver(delivery_id=Delivery.objects.get().id, now=t0)
    (message,) = mail.outbox
    assert message.subject == "[Tocsin] DOWN (escalated) nightly-backup (production)"
    assert "Escalated: step 2, repeat 1\n" in message.body


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_owe_each_notification_once(check, team, t0):
    users = [MembershipFactory(team=team).user for _ in range(3)]
    incident = Incident.objects.create(owner=check, kind="failure_signal", opened_at=t0)
    recipients = [Recipient(user_id=u.id) for u in users]
    barrier = threading.Barrier(4)
    errors = []

    def sweep():
        from django.db import transaction

        try:
            barrier.wait()
            with transaction.atomic():
                notify(
                    incident=incident,
                    event="down",
                    recipients=recipients,
                    round=0,
                    step=0,
                    now=t0,
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert targets() == sorted(f"user:{u.id}" for u in users)
