"""Creating teams and members; used by sign-up, the dashboard and the provisioning commands."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from .invitations import InvalidInvitation
from .lifecycle import team_created
from .models import Invitation, Membership, Team, UserSettings
from .report_periods import DEFAULT_FREQUENCY, Frequency


def unique_team_slug(name: str) -> str:
    base = slugify(name)[:90] or "team"
    slug, n = base, 2
    while Team.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def create_team(*, name: str, slug: str | None = None) -> Team:
    """Create the team and announce it (lifecycle.team_created), in one transaction: a new team
    starts with what the upper layers give it, such as a default escalation policy."""
    team = Team.objects.create(name=name, slug=slug or unique_team_slug(name))
    team_created.send(sender=Team, team=team)
    return team


@transaction.atomic
def add_member(
    *, team: Team, username: str, email: str, role: str, password: str | None
) -> Membership:
    """Create the user if needed (setting the password when one is given) and give it the role
    in the team. Repeating it is safe: the role and password are updated in place."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username, defaults={"email": email})
    if email and user.email != email:
        user.email = email
    if password:
        user.set_password(password)
    elif created:
        # Explicitly unusable (not an empty hash), so that tools and the admin see no password.
        user.set_unusable_password()
    user.save()
    membership, _ = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return membership


class TeamRuleError(Exception):
    """A change to the team that its rules forbid (removing the last owner, ...); the message
    says why, for the page."""


@transaction.atomic
def sign_up(*, username: str, email: str, password: str, team_name: str) -> Membership:
    """Create a user and a new team in which that user is the owner."""
    user = get_user_model().objects.create_user(username=username, email=email, password=password)
    team = create_team(name=team_name)
    return Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)


def _lock_team(team_id: int) -> Team:
    # Role changes and removals of one team are serialised on the team row, so that two owners
    # demoting each other at the same moment cannot leave the team with none.
    return Team.objects.select_for_update().get(id=team_id)


def _owner_count(team: Team) -> int:
    return team.memberships.filter(role=Membership.Role.OWNER).count()


@transaction.atomic
def change_role(*, team: Team, membership_id: int, role: str) -> Membership:
    """Give a member of `team` another role. Raises Membership.DoesNotExist for a membership
    of another team, TeamRuleError when it would leave the team without an owner."""
    role = Membership.Role(role)
    _lock_team(team.id)
    membership = Membership.objects.select_related("user").get(id=membership_id, team=team)
    if (
        membership.role == Membership.Role.OWNER
        and role != Membership.Role.OWNER
        and _owner_count(team) == 1
    ):
        raise TeamRuleError("A team needs at least one owner: make someone else owner first.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(*, team: Team, membership_id: int) -> Membership:
    """Take a member out of `team` (the user account stays). Raises Membership.DoesNotExist for
    a membership of another team, TeamRuleError for the last owner."""
    _lock_team(team.id)
    membership = Membership.objects.select_related("user").get(id=membership_id, team=team)
    if membership.role == Membership.Role.OWNER and _owner_count(team) == 1:
        raise TeamRuleError("The last owner cannot be removed: make someone else owner first.")
    membership.delete()
    return membership


def invite_member(*, team: Team, email: str, role: str, invited_by, now) -> Invitation:
    """Record an invitation; the caller emails its link (see invitation_url)."""
    return Invitation.objects.create(
        team=team,
        email=email,
        role=Membership.Role(role),
        invited_by=invited_by,
        created_at=now,
    )


@transaction.atomic
def revoke_invitation(*, team: Team, invitation_id: int, now) -> Invitation:
    """Take back a pending invitation of `team`; Invitation.DoesNotExist for another team's."""
    invitation = Invitation.objects.select_for_update().get(id=invitation_id, team=team)
    if invitation.is_pending:
        invitation.revoked_at = now
        invitation.save(update_fields=["revoked_at"])
    return invitation


def pending_invitation(invitation_id: int) -> Invitation:
    """The invitation if it can still be accepted; raises InvalidInvitation otherwise."""
    invitation = Invitation.objects.select_related("team").filter(id=invitation_id).first()
    if invitation is None or invitation.revoked_at is not None:
        raise InvalidInvitation("This invitation was withdrawn.")
    if invitation.accepted_at is not None:
        raise InvalidInvitation("This invitation has already been used.")
    return invitation


@transaction.atomic
def accept_invitation(*, invitation_id: int, user, now) -> Membership:
    """Make `user` a member of the invitation's team with its role, once. A user already in
    the team keeps the higher of the two roles (an invitation never demotes). Raises
    InvalidInvitation when the invitation was used or withdrawn in the meantime."""
    locked = Invitation.objects.select_for_update().filter(id=invitation_id).first()
    if locked is None:
        raise InvalidInvitation("This invitation was withdrawn.")
    invitation = pending_invitation(locked.id)
    membership, created = Membership.objects.get_or_create(
        team=invitation.team, user=user, defaults={"role": invitation.role}
    )
    if not created and not membership.has_role(Membership.Role(invitation.role)):
        membership.role = invitation.role
        membership.save(update_fields=["role"])
    invitation.accepted_at = now
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


@transaction.atomic
def sign_up_and_accept(*, invitation_id: int, username: str, password: str, now) -> Membership:
    """Create an account for the invited address and accept the invitation with it."""
    invitation = pending_invitation(invitation_id)
    user = get_user_model().objects.create_user(
        username=username, email=invitation.email, password=password
    )
    return accept_invitation(invitation_id=invitation_id, user=user, now=now)


def admin_addresses(team_id: int) -> list[str]:
    """Email addresses of the team's active owners and admins, sorted: who hears about
    failures of Tocsin's own machinery (evaluation errors, deliveries failing for good)."""
    return sorted(
        Membership.objects.filter(
            team_id=team_id,
            role__in=[Membership.Role.OWNER, Membership.Role.ADMIN],
            user__is_active=True,
        )
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )


def report_settings_of(user_id: int) -> tuple[Frequency, str]:
    """(how often status reports come, the zone name their periods follow: "" is UTC)."""
    row = UserSettings.objects.filter(user_id=user_id).first()
    if row is None:
        return DEFAULT_FREQUENCY, ""
    return Frequency(row.report_frequency), row.display_timezone


def set_report_frequency(*, user_id: int, frequency: Frequency) -> bool:
    """Store how often the user's status report comes (Frequency.OFF: never). Idempotent.
    False when the user no longer exists (an old unsubscribe link): nothing is written."""
    if not get_user_model().objects.filter(pk=user_id).exists():
        return False
    UserSettings.objects.update_or_create(
        user_id=user_id, defaults={"report_frequency": Frequency(frequency).value}
    )
    return True
