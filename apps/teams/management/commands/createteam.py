from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug
from django.utils.text import slugify

from apps.teams.models import Team
from apps.teams.services import create_team


class Command(BaseCommand):
    help = "Create a team (idempotent: an existing slug is left as it is). Prints its ping key."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", help="Defaults to a slug of the name.")

    def handle(self, *args, name, slug=None, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        # Provisioning scripts run on every container start: without --slug the team is still
        # found again by the slug of its name instead of being created twice.
        slug = slug or slugify(name)
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(
                f"--slug {slug!r} must be letters, digits, hyphens or underscores."
            ) from None
        if len(slug) > 100:
            raise CommandError("--slug must be at most 100 characters.")
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            team = create_team(name=name, slug=slug)
            self.stdout.write(f"created team {team.slug}")
        else:
            self.stdout.write(f"team {team.slug} already exists")
        self.stdout.write(f"ping key: {team.ping_key}")
