from django.core.management.base import BaseCommand

from apps.teams.models import Membership, Team
from apps.teams.services import add_member, create_team

DEMO_TEAM = "demo"
DEMO_USER = "demo"
DEMO_PASSWORD = "tocsin-demo"  # noqa: S105 - a local demo login, printed to the console


class Command(BaseCommand):
    help = "Create the demo team and login used by the local run command (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url, **options):
        team = Team.objects.filter(slug=DEMO_TEAM).first() or create_team(
            name="Demo team", slug=DEMO_TEAM
        )
        add_member(
            team=team,
            username=DEMO_USER,
            email="demo@example.com",
            role=Membership.Role.OWNER,
            password=DEMO_PASSWORD,
        )
        self.stdout.write(
            f"\n  Tocsin is starting at {url}\n"
            f"  Log in as {DEMO_USER} / {DEMO_PASSWORD}  (team ping key: {team.ping_key})\n"
        )
