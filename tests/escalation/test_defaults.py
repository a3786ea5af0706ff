"""A new team reaches someone from its first failure: it starts with a default policy that
emails every member."""

from datetime import UTC, datetime

from django.core import mail

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.escalation.defaults import DEFAULT_POLICY_NAME, create_default_policy
from apps.escalation.models import EscalationPolicy
from apps.notifications.delivery import deliver
from apps.notifications.flush import flush_due_groups
from apps.notifications.models import Delivery
from apps.teams.models import Membership
from apps.teams.services import add_member, create_team, sign_up
from tests.factories import CheckFactory

T = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


def test_a_new_team_starts_with_a_default_policy_that_emails_every_member(db):
    team = create_team(name="Platform")
    (policy,) = EscalationPolicy.objects.filter(team=team)
    assert (policy.name, policy.is_default) == (DEFAULT_POLICY_NAME, True)
    (step,) = policy.steps.all()
    assert step.targets == [{"kind": "team", "id": team.id}]

    for name, role in (("ann", "owner"), ("ben", "member"), ("cy", "viewer")):
        add_member(team=team, username=name, email=f"{name}@example.com", role=role, password=None)
    check = CheckFactory(team=team, name="backup")
    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=1), token=check.ping_token, now=T
    )
    sweep_due_checks(now=T)
    flush_due_groups(now=T)
    for delivery in Delivery.objects.all():
        deliver(delivery_id=delivery.id, now=T, jitter=0)
    assert sorted(m.to[0] for m in mail.outbox) == [
        "ann@example.com",
        "ben@example.com",
        "cy@example.com",
    ]
    assert check.incidents.get().policy_name == DEFAULT_POLICY_NAME


def test_signing_up_gives_the_new_team_its_default_policy(db):
    membership = sign_up(
        username="dora", email="dora@example.com", password="a long passphrase", team_name="D"
    )
    assert membership.role == Membership.Role.OWNER
    assert EscalationPolicy.objects.get(team=membership.team).is_default


def test_a_team_that_has_a_default_keeps_it(db):
    team = create_team(name="Ops")
    assert create_default_policy(team=team) is None
    assert EscalationPolicy.objects.filter(team=team).count() == 1


def test_a_default_left_without_steps_falls_back_to_telling_every_member(team, member, owner):
    # Saved before a step-less default was refused (or straight into the database).
    EscalationPolicy.objects.create(team=team, name="Empty", is_default=True)
    check = CheckFactory(team=team, name="backup")
    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=1), token=check.ping_token, now=T
    )
    sweep_due_checks(now=T)
    flush_due_groups(now=T)
    for delivery in Delivery.objects.all():
        deliver(delivery_id=delivery.id, now=T, jitter=0)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([member.email, owner.email])
