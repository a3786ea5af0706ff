from django.core.management.base import BaseCommand, CommandError

from apps.api.keys import create_api_key
from apps.teams.models import Team


class Command(BaseCommand):
    help = (
        "Create an API key for a team and print it. The key is shown only this once: only its "
        "hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument("--read-only", action="store_true", help="A key that cannot write.")
        parser.add_argument("--name", default="", help="What the key is for (default: cli).")

    def handle(self, *args, team, read_only=False, name="", **options):
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise CommandError(f"No team with the slug {team!r}.")
        name = name.strip() or "cli"
        if len(name) > 100 or "\x00" in name:
            raise CommandError("--name must be at most 100 characters.")
        new = create_api_key(team=found, name=name, is_read_only=read_only)
        access = "read-only" if read_only else "read-write"
        # The key alone on stdout's last line, so scripts can capture it with `tail -n1`.
        self.stderr.write(f"created {access} API key {new.api_key.prefix} for team {found.slug}")
        self.stdout.write(new.secret)
