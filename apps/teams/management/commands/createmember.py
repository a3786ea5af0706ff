import os

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from apps.teams.models import Membership, Team
from apps.teams.services import add_member

PASSWORD_ENV = "TOCSIN_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


class Command(BaseCommand):
    help = (
        "Create (or update) a user and give it a role in a team, non-interactively. The "
        f"password comes from --password or the {PASSWORD_ENV} environment variable."
    )

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--role", choices=Membership.Role.values, default=Membership.Role.MEMBER
        )
        parser.add_argument("--password", help=f"Prefer the {PASSWORD_ENV} variable.")

    def handle(self, *args, team, username, email, role, password=None, **options):
        # call_command(role=...) skips argparse's choices check, so check here too.
        if role not in Membership.Role.values:
            raise CommandError(
                f"--role {role!r} is not a role; use one of {', '.join(Membership.Role.values)}."
            )
        team_obj = Team.objects.filter(slug=team).first()
        if team_obj is None:
            raise CommandError(f"No team with slug {team!r}. Create it with createteam first.")
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not a valid email address.") from None
        if not username.strip() or len(username) > 150:
            raise CommandError("--username must be 1 to 150 characters.")
        try:
            UnicodeUsernameValidator()(username)
        except ValidationError:
            raise CommandError(
                f"--username {username!r} may hold only letters, digits and @ . + - _"
            ) from None
        password = password or os.environ.get(PASSWORD_ENV)
        membership = add_member(
            team=team_obj, username=username, email=email, role=role, password=password
        )
        note = "" if password else " (no password set: the user cannot log in yet)"
        self.stdout.write(f"{membership.user.username} is {role} of {team_obj.slug}{note}")
