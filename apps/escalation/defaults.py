"""What a new team starts with: a default escalation policy that emails every member, so a team
reaches someone from its first failure, and an admin edits a policy that is already there
instead of discovering that an empty one notifies nobody."""

from datetime import timedelta

from apps.teams.models import Team

from .models import EscalationPolicy, EscalationStep
from .policy import TargetKind

DEFAULT_POLICY_NAME = "Everyone by email"


def create_default_policy(*, team: Team) -> EscalationPolicy | None:
    """Give `team` its default policy: one step telling every member (by email, their contact
    method). Does nothing when the team already has a default. Runs in the caller's
    transaction."""
    if EscalationPolicy.objects.filter(team=team, is_default=True).exists():
        return None
    policy = EscalationPolicy.objects.create(team=team, name=DEFAULT_POLICY_NAME, is_default=True)
    EscalationStep.objects.create(
        policy=policy,
        order=0,
        wait=timedelta(minutes=15),
        targets=[{"kind": TargetKind.TEAM.value, "id": team.id}],
    )
    return policy


def on_team_created(sender, *, team: Team, **kwargs) -> None:
    create_default_policy(team=team)
