"""The idle sweep: how long one sweep takes when a great many checks exist and none is due.

    DATABASE_URL=postgres://.../tocsin_bench python bench/idle_sweep.py --checks 1000000

Fills the checks table (TRUNCATE ... CASCADE first: this database belongs to the benchmark)
with `--checks` up checks whose deadlines are all tomorrow, VACUUM ANALYZEs it (so that the
index-only scan needs no heap visits), prints the plan of the query that finds the earliest
deadline, then times `--sweeps` sweeps with nothing due and prints one JSON line: the median
and the slowest. Not part of the test suite.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from apps.checks.models import Check, SweepRun  # noqa: E402
from apps.checks.sweeper import earliest_due_at, sweep_due_checks  # noqa: E402
from apps.clock import database_now  # noqa: E402
from apps.teams.services import create_team  # noqa: E402


def fill(count: int) -> None:
    table = Check._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}, {SweepRun._meta.db_table} CASCADE")
    team = create_team(name="Idle bench", slug="idle-bench")
    with connection.cursor() as cursor:
        # One statement: the columns without a database default are given here.
        cursor.execute(
            f"""
            INSERT INTO {table} (
                id, team_id, name, slug, tags, description, environment, ping_token,
                schedule_kind, period, schedule_expression, timezone, grace, post_only,
                success_keywords, failure_keywords, manual_resume, failure_threshold,
                recovery_threshold, missed_tolerance, transient_exit_statuses, transient_limit,
                severity, severity_raise_to, flap_threshold, flap_window, skew_warning, status,
                alert_after, n_pings, processed_n, eval_state, created_at)
            SELECT gen_random_uuid(), %s, 'idle ' || i, 'idle-' || i, '', '', '',
                gen_random_uuid(), 'period', interval '1 day', '', 'UTC', interval '1 hour',
                false, '', '', false, 1, 1, 1, '75', 3, 'warning', 'critical', 0,
                interval '1 hour', interval '60 seconds', 'up',
                now() + interval '1 day' + i * interval '1 millisecond', 0, 0, '{{}}', now()
            FROM generate_series(1, %s) AS i
            """,
            [team.id, count],
        )
        cursor.execute(f"VACUUM ANALYZE {table}")


def plan() -> str:
    query = Check.objects.filter(alert_after__isnull=False).order_by("alert_after")
    return query.values_list("alert_after", flat=True)[:1].explain(analyze=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--sweeps", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="reuse the checks already there")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("needs PostgreSQL (DATABASE_URL)")
    if not args.keep:
        fill(args.checks)
    print(plan(), flush=True)
    if earliest_due_at() <= database_now():
        sys.exit("some checks are due: not an idle sweep")
    timings = []
    now = database_now()
    for _ in range(args.sweeps):
        now += timedelta(seconds=5)
        started = time.perf_counter()
        result = sweep_due_checks(now=now)
        timings.append(time.perf_counter() - started)
        if result.examined:
            sys.exit(f"the sweep examined {result.examined} checks: not an idle sweep")
    record = {
        "checks": Check.objects.count(),
        "sweeps": len(timings),
        "median_ms": round(statistics.median(timings) * 1000, 2),
        "max_ms": round(max(timings) * 1000, 2),
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
