"""Benchmark data and the sweep timing, run inside Django (DATABASE_URL names the database).

    python bench/data.py populate --tokens bench/var/tokens.txt
        one team with an on-call member (with an email, so that sweeps write outbox rows) and
        one check per token in the file, all UP with their next deadline a day away.
    python bench/data.py sweep --repeat 3
        makes every benchmark check due at once (last ping 10 days ago) and times
        sweep_due_checks(now=database_now()), which flips them DOWN, opens an incident per check
        and writes its notifications, then enqueues their delivery on commit (REDIS_URL).
        Prints one JSON line per repeat. Between repeats the incidents, flips and outbox rows it
        wrote are deleted so that every repeat does the same work.
    python bench/data.py count
        prints the number of Ping rows (to check that every answered request was recorded).

Not part of the test suite; bench/run.py drives it.
"""

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from apps.checks.clock import database_now  # noqa: E402
from apps.checks.models import Check, Flip, Ping  # noqa: E402
from apps.checks.sweeper import sweep_due_checks  # noqa: E402
from apps.incidents.models import Incident  # noqa: E402
from apps.notifications.models import Notification  # noqa: E402
from apps.teams.models import Membership, Team  # noqa: E402
from apps.teams.services import add_member, create_team  # noqa: E402

TEAM_SLUG = "bench"
PERIOD = timedelta(days=1)
GRACE = timedelta(hours=1)


def populate(tokens_path: Path, members: int) -> None:
    tokens = [line.strip() for line in tokens_path.read_text().splitlines() if line.strip()]
    with transaction.atomic():
        team = Team.objects.filter(slug=TEAM_SLUG).first() or create_team(
            name="Bench", slug=TEAM_SLUG
        )
        for n in range(members):
            add_member(
                team=team,
                username=f"bench-oncall-{n}",
                email=f"oncall-{n}@bench.example",
                role=Membership.Role.OWNER,
                password=None,
            )
        now = database_now()
        Check.objects.filter(team=team).delete()
        Check.objects.bulk_create(
            Check(
                team=team,
                name=f"Bench job {i:04d}",
                slug=f"bench-job-{i:04d}",
                ping_token=token,
                period=PERIOD,
                grace=GRACE,
                status=Check.Status.UP,
                last_signal="success",
                last_ping_at=now,
                alert_after=now + PERIOD,
            )
            for i, token in enumerate(tokens)
        )
    print(f"team {team.slug}: {len(tokens)} checks, {members} member(s) with an email")


def make_due(team: Team) -> int:
    """Put every check of the team back to UP with its last ping 10 days ago: all due now."""
    long_ago = database_now() - timedelta(days=10)
    with transaction.atomic():
        checks = Check.objects.filter(team=team)
        Notification.objects.filter(incident__owner__team=team).delete()
        Incident.objects.filter(owner__team=team).delete()
        Flip.objects.filter(owner__team=team).delete()
        return checks.update(
            status=Check.Status.UP,
            last_signal="success",
            last_ping_at=long_ago,
            paused_at=None,
            alert_after=long_ago + PERIOD,
        )


def queued_tasks() -> int | None:
    """Messages waiting in the Redis broker's default queue (None without Redis)."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url).llen("celery")


def purge_broker() -> None:
    url = os.environ.get("REDIS_URL", "")
    if url:
        import redis

        # The benchmark's own Redis database number: nothing else lives there.
        redis.Redis.from_url(url).flushdb()


def sweep(repeat: int) -> None:
    team = Team.objects.get(slug=TEAM_SLUG)
    purge_broker()
    for n in range(repeat):
        due = make_due(team)
        connection.close()  # start each timing on a fresh connection, as a new task would
        started = time.perf_counter()
        result = sweep_due_checks(now=database_now())
        seconds = time.perf_counter() - started
        record = {
            "repeat": n + 1,
            "due": due,
            "seconds": round(seconds, 3),
            "examined": result.examined,
            "changed": result.changed,
            "opened": result.opened,
            "errors": len(result.errors),
            "incidents": Incident.objects.filter(owner__team=team).count(),
            "notifications": Notification.objects.filter(incident__owner__team=team).count(),
            "tasks_enqueued": queued_tasks(),
        }
        purge_broker()
        print(json.dumps(record), flush=True)


def count() -> None:
    print(json.dumps({"pings": Ping.objects.count()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("populate")
    p.add_argument("--tokens", type=Path, required=True)
    p.add_argument("--members", type=int, default=1)
    s = sub.add_parser("sweep")
    s.add_argument("--repeat", type=int, default=3)
    sub.add_parser("count")
    args = parser.parse_args()
    if args.command == "populate":
        populate(args.tokens, args.members)
    elif args.command == "sweep":
        sweep(args.repeat)
    else:
        count()


if __name__ == "__main__":
    main()
