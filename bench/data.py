"""Benchmark data and the sweep timing, run inside Django (DATABASE_URL names the database).

    python bench/data.py populate --tokens bench/var/tokens.txt
        one team with an on-call member (with an email, so that alerts write outbox rows) and
        one check per token in the file, for the ping benchmark.
    python bench/data.py sweep --checks 1000 --repeat 3
        1,000 checks (period 1 minute, grace 1 minute) all ping at t0 and then fall silent.
        A sweeper running every SWEEP_INTERVAL is simulated with the real service,
        sweep_due_checks(now=...) at t0 + 1 s, t0 + 6 s, ... (injected times on the database's
        timeline, so that there is no gap that would count as Tocsin being blind), and every
        sweep that changes checks is timed: the one that folds the 1,000 first pings (new -> up),
        the one where all 1,000 deadlines pass at once (up -> late) and the one where all 1,000
        go down (flips, incidents, outbox rows, delivery enqueued after commit on REDIS_URL).
        Prints one JSON line per timed sweep. The checks tables are emptied first (TRUNCATE ...
        CASCADE: this database belongs to the benchmark) and the broker database flushed after.
    python bench/data.py fold-setup --checks 1000 --tokens bench/var/fold-tokens.txt
        empty checks (period 1 day) whose tokens bench/run.py then pings over HTTP (22 each).
    python bench/data.py fold --expect 22000
        sweeps at the database's time until every ping is folded; prints one JSON line with
        the ingest rate (pings over the span of their arrival times) and the fold rate (pings
        over the seconds the sweeps took).

Not part of the test suite; bench/run.py drives it.
"""

import argparse
import contextlib
import cProfile
import json
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count, F, Max, Min, Sum  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from apps.checks.models import Check, Flip, Ping, SweepRun  # noqa: E402
from apps.checks.pings import PingData, record_ping  # noqa: E402
from apps.checks.sweeper import sweep_due_checks  # noqa: E402
from apps.clock import database_now  # noqa: E402
from apps.incidents.models import Incident, IncidentEvent  # noqa: E402
from apps.notifications.models import Notification  # noqa: E402
from apps.teams.models import Membership, Team  # noqa: E402
from apps.teams.services import add_member, create_team  # noqa: E402

TEAM_SLUG = "bench"


def bench_team(members: int) -> Team:
    team = Team.objects.filter(slug=TEAM_SLUG).first() or create_team(name="Bench", slug=TEAM_SLUG)
    for n in range(members):
        add_member(
            team=team,
            username=f"bench-oncall-{n}",
            email=f"oncall-{n}@bench.example",
            role=Membership.Role.OWNER,
            password=None,
        )
    return team


def create_checks(team: Team, tokens, *, period: timedelta, grace: timedelta) -> None:
    Check.objects.bulk_create(
        Check(
            team=team,
            name=f"Bench job {i:04d}",
            slug=f"bench-job-{i:04d}",
            id=token,
            period=period,
            grace=grace,
        )
        for i, token in enumerate(tokens)
    )


def populate(tokens_path: Path, members: int) -> None:
    tokens = [line.strip() for line in tokens_path.read_text().splitlines() if line.strip()]
    with transaction.atomic():
        team = bench_team(members)
        Check.objects.filter(team=team).delete()
        create_checks(team, tokens, period=timedelta(days=1), grace=timedelta(hours=1))
    print(f"team {team.slug}: {len(tokens)} checks, {members} member(s) with an email")


def empty_checks_tables() -> None:
    tables = [Check._meta.db_table, SweepRun._meta.db_table]
    with connection.cursor() as cursor:
        # CASCADE empties every table that refers to checks (pings, flips, runs, incidents and
        # their notifications): this database exists for the benchmark only.
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def broker():
    url = os.environ.get("REDIS_URL", "")
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url)


# BENCH_PROFILE=<directory>: each timed sweep also runs under cProfile and its stats are written
# there (read them with `python -m pstats`); the figures are then slower than without it.
PROFILE_DIR = os.environ.get("BENCH_PROFILE", "")


@contextlib.contextmanager
def profiled():
    if not PROFILE_DIR:
        yield None
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield profile
    finally:
        profile.disable()


def sweep(checks: int, repeat: int, members: int) -> None:
    period = grace = timedelta(minutes=1)
    interval = timedelta(seconds=settings.SWEEP_INTERVAL)
    redis = broker()
    for n in range(repeat):
        empty_checks_tables()
        team = bench_team(members)
        tokens = [uuid.uuid4() for _ in range(checks)]
        create_checks(team, tokens, period=period, grace=grace)
        end = database_now()
        # Far enough back for the deadline and the grace (plus the skew allowance) to pass.
        t0 = end - period - grace - 4 * settings.CLOCK_SKEW_ALLOWANCE - 4 * interval
        for token in tokens:
            record_ping(ping=PingData(kind=Ping.Kind.SUCCESS, method="GET"), token=token, now=t0)
        if redis is not None:
            redis.flushdb()  # the benchmark's own Redis database number: nothing else lives there
        now = t0 + timedelta(seconds=1)
        while now <= end:
            connection.close()  # each sweep on a fresh connection, as a new task would be
            with profiled() as profile, CaptureQueriesContext(connection) as queries:
                started, cpu_started = time.perf_counter(), time.process_time()
                result = sweep_due_checks(now=now)
                seconds = time.perf_counter() - started
                cpu_seconds = time.process_time() - cpu_started
            if result.changed or result.errors:
                to_status = Flip.objects.filter(owner__team=team, happened_at__lte=now)
                to_status = to_status.order_by("-happened_at", "-id").first()
                record = {
                    "repeat": n + 1,
                    "at": f"t0 + {(now - t0).total_seconds():.0f} s",
                    "seconds": round(seconds, 3),
                    # The sweeper's own CPU (this process, not PostgreSQL's): steadier than
                    # seconds when the machine is shared.
                    "cpu_seconds": round(cpu_seconds, 3),
                    "examined": result.examined,
                    "changed": result.changed,
                    "to_status": to_status.to_status if to_status else None,
                    "pings_folded": result.pings_folded,
                    "opened": result.opened,
                    "errors": len(result.errors),
                    "queries": len(queries.captured_queries),
                    "query_seconds": round(
                        sum(float(q["time"]) for q in queries.captured_queries), 3
                    ),
                    "incidents": Incident.objects.filter(owner__team=team).count(),
                    "timeline_events": IncidentEvent.objects.filter(
                        incident__owner__team=team
                    ).count(),
                    "notifications": Notification.objects.filter(
                        incident__owner__team=team
                    ).count(),
                    # Every queue of the settings: sweeps and flushes, and deliveries.
                    "tasks_enqueued": sum(
                        redis.llen(queue["name"] if isinstance(queue, dict) else queue.name)
                        for queue in settings.CELERY_TASK_QUEUES
                    )
                    if redis is not None
                    else None,
                }
                print(json.dumps(record), flush=True)
                if profile is not None:
                    path = Path(PROFILE_DIR) / f"sweep-{n + 1}-{record['to_status']}.pstats"
                    profile.dump_stats(path)
                    print(f"profile of the sweep to {record['to_status']}: {path}", file=sys.stderr)
                if redis is not None:
                    redis.flushdb()
            now += interval


def fold_setup(checks: int, tokens_path: Path) -> None:
    empty_checks_tables()
    team = bench_team(members=1)
    tokens = [uuid.uuid4() for _ in range(checks)]
    # A long period: folding must be the only work, no deadline passes during the benchmark.
    create_checks(team, tokens, period=timedelta(days=1), grace=timedelta(hours=1))
    tokens_path.write_text("".join(f"{t}\n" for t in tokens))
    print(json.dumps({"checks": checks}))


def backlog(team: Team) -> int:
    """Pings recorded but not yet folded by the sweeper."""
    pending = Check.objects.filter(team=team).aggregate(n=Sum(F("n_pings") - F("processed_n")))
    return pending["n"] or 0


def fold(expect: int, max_sweeps: int) -> None:
    team = Team.objects.get(slug=TEAM_SLUG)
    pings = Ping.objects.filter(owner__team=team)
    arrival = pings.aggregate(first=Min("received_at"), last=Max("received_at"))
    recorded = pings.count()
    span = (arrival["last"] - arrival["first"]).total_seconds() if recorded > 1 else 0.0
    sweeps = []
    while backlog(team) and len(sweeps) < max_sweeps:
        connection.close()  # each sweep on a fresh connection, as a new task would be
        now = database_now()
        started = time.perf_counter()
        result = sweep_due_checks(now=now)
        seconds = time.perf_counter() - started
        sweeps.append(
            {
                "seconds": round(seconds, 3),
                "examined": result.examined,
                "changed": result.changed,
                "pings_folded": result.pings_folded,
                "errors": len(result.errors),
            }
        )
    folded = sum(s["pings_folded"] for s in sweeps)
    sweep_seconds = sum(s["seconds"] for s in sweeps)
    record = {
        "expected": expect,
        "recorded": recorded,
        "arrival_span_s": round(span, 3),
        "ingest_per_s": round(recorded / span, 1) if span else None,
        "sweeps": sweeps,
        "folded": folded,
        "left_unfolded": backlog(team),
        "sweep_seconds": round(sweep_seconds, 3),
        "folded_per_s": round(folded / sweep_seconds, 1) if sweep_seconds else None,
        "statuses": dict(
            Check.objects.filter(team=team).values_list("status").annotate(n=Count("id"))
        ),
    }
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("populate")
    p.add_argument("--tokens", type=Path, required=True)
    p.add_argument("--members", type=int, default=1)
    s = sub.add_parser("sweep")
    s.add_argument("--checks", type=int, default=1000)
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument("--members", type=int, default=1)
    f = sub.add_parser("fold-setup")
    f.add_argument("--checks", type=int, default=1000)
    f.add_argument("--tokens", type=Path, required=True)
    g = sub.add_parser("fold")
    g.add_argument("--expect", type=int, required=True)
    g.add_argument("--max-sweeps", type=int, default=100)
    args = parser.parse_args()
    if args.command == "populate":
        populate(args.tokens, args.members)
    elif args.command == "sweep":
        sweep(args.checks, args.repeat, args.members)
    elif args.command == "fold-setup":
        fold_setup(args.checks, args.tokens)
    else:
        fold(args.expect, args.max_sweeps)


if __name__ == "__main__":
    main()
