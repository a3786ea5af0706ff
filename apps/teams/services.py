"""Creating teams and members; used by sign-up, the dashboard and the provisioning commands."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from .models import Membership, Team


def unique_team_slug(name: str) -> str:
    base = slugify(name)[:90] or "team"
    slug, n = base, 2
    while Team.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def create_team(*, name: str, slug: str | None = None) -> Team:
    return Team.objects.create(name=name, slug=slug or unique_team_slug(name))


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
