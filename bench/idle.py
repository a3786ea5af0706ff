"""The idle sweep: 1,000,000 checks of which none is due, in a database of their own.

    python bench/idle.py status
        one JSON line: the migrations hash, the number of checks and the earliest deadline
        recorded when the database was filled ({} when it never was).
    python bench/idle.py populate --checks 1000000 --migrations-hash <sha256>
        fills the (freshly migrated) database: one team, 1,000,000 up checks whose deadlines
        lie 30 to 31 days ahead, written by INSERT ... SELECT generate_series in chunks, then
        VACUUM ANALYZE (so the planner knows the table and index-only scans see a clean
        visibility map). Records the hash and the count, so that the next run can reuse it.
    python bench/idle.py sweep --repeat 5
        times `repeat` calls of sweep_due_checks(now=<database time>), each on a fresh
        connection, and shows the plan (EXPLAIN ANALYZE, BUFFERS) of every SELECT the last
        sweep sent, whatever the sweeper's internals are: the queries are captured, not
        rebuilt here. Prints one JSON line.

The rows are built from Check's own fields (each column's default, a few overridden), so a
field added later with a default needs no change here.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from apps.checks.models import Check  # noqa: E402
from apps.checks.sweeper import sweep_due_checks  # noqa: E402
from apps.clock import database_now  # noqa: E402
from apps.teams.services import create_team  # noqa: E402

META_TABLE = "bench_idle_meta"
CHUNK = 100_000


def read_meta() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [META_TABLE])
        if cursor.fetchone()[0] is None:
            return {}
        cursor.execute(f"SELECT key, value FROM {META_TABLE}")
        return dict(cursor.fetchall())


def column_values(team_id: int) -> tuple[list[str], list[str], list]:
    """Columns, SQL expressions and parameters of one generated row (`g` is the row number)."""
    overrides = {
        "id": "gen_random_uuid()",
        "team": "%s",
        "name": "'Idle check ' || g",
        "slug": "'idle-' || g",
        "status": "%s",
        # Spread over a day, a month ahead: nothing is due, and the index has real keys.
        "alert_after": "now() + interval '30 days' + g * interval '86400 microseconds'",
        "last_ping_at": "now() - interval '1 hour'",
        "created_at": "now()",
    }
    override_params = {"team": team_id, "status": Check.Status.UP}
    columns, expressions, params = [], [], []
    for field in Check._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.name in overrides:
            expressions.append(overrides[field.name])
            if field.name in override_params:
                params.append(override_params[field.name])
        elif field.unique and field.get_internal_type() == "UUIDField":
            # A unique UUID (the badge key, say) needs one of its own per row, not the
            # default's single value.
            expressions.append("gen_random_uuid()")
        elif field.has_default() or not field.null:
            # Django's own default: the declared one, or "" for a text field without one.
            default = field.get_default()
            if default is None and not field.null:
                sys.exit(f"Check.{field.name} has no default: give it a value in bench/idle.py")
            expressions.append("%s")
            params.append(field.get_db_prep_save(default, connection))
        else:
            expressions.append("NULL")
    return columns, expressions, params


def populate(checks: int, migrations_hash: str) -> None:
    started = time.monotonic()
    team = create_team(name="Idle", slug="idle")
    columns, expressions, params = column_values(team.id)
    statement = (
        f"INSERT INTO {Check._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(expressions)} FROM generate_series(%s, %s) AS g"
    )
    with connection.cursor() as cursor:
        for first in range(1, checks + 1, CHUNK):
            last = min(first + CHUNK - 1, checks)
            cursor.execute(statement, [*params, first, last])
            print(f"  {last:,} checks written", file=sys.stderr, flush=True)
        cursor.execute(f"VACUUM ANALYZE {Check._meta.db_table}")
        cursor.execute(f"CREATE TABLE {META_TABLE} (key text PRIMARY KEY, value text NOT NULL)")
        cursor.execute("SELECT min(alert_after) FROM " + Check._meta.db_table)
        earliest = cursor.fetchone()[0]
        cursor.executemany(
            f"INSERT INTO {META_TABLE} (key, value) VALUES (%s, %s)",
            [
                ("migrations_hash", migrations_hash),
                ("checks", str(checks)),
                ("earliest_due", earliest.isoformat()),
            ],
        )
    print(json.dumps({"checks": checks, "seconds": round(time.monotonic() - started, 1)}))


def explain(queries: list[dict]) -> list[dict]:
    plans = []
    for query in queries:
        sql = query["sql"]
        verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        is_select = verb in ("SELECT", "WITH")
        if not is_select and verb not in ("INSERT", "UPDATE", "DELETE"):
            # BEGIN, SAVEPOINT, COMMIT...: listed with their time, nothing to plan.
            plans.append({"sql": sql, "ms_in_sweep": round(float(query["time"]) * 1000, 3),
                          "is_claim": False, "analyzed": False, "plan": ""})  # fmt: skip
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            # ANALYZE runs the statement: only for reads, and rolled back anyway (FOR UPDATE).
            options = "ANALYZE, BUFFERS" if is_select else "COSTS"
            cursor.execute(f"EXPLAIN ({options}) {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
        plans.append(
            {
                "sql": sql,
                "ms_in_sweep": round(float(query["time"]) * 1000, 3),
                # The sweeper's claim: a locking read whose main table is the checks'.
                "is_claim": "FOR UPDATE" in sql.upper()
                and re.search(rf'\bFROM\s+"?{Check._meta.db_table}"?\s', sql) is not None,
                "analyzed": is_select,
                "plan": plan,
            }
        )
    return plans


def sweep(repeat: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {Check._meta.db_table}")
        total = cursor.fetchone()[0]
    now = database_now()
    due = Check.objects.due(now).count()
    seconds = []
    captured = None
    for n in range(repeat):
        connection.close()  # a fresh connection per sweep, as a new task would have
        now = database_now()
        last = n == repeat - 1
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            result = sweep_due_checks(now=now)
            seconds.append(time.perf_counter() - started)
        if last:
            captured = list(ctx.captured_queries)
        if result.examined or result.errors:
            sys.exit(f"the idle sweep examined {result.examined} checks: the data is not idle")
    record = {
        "checks": total,
        "due": due,
        "sweep_ms": [round(s * 1000, 2) for s in seconds],
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "queries_per_sweep": len(captured or []),
        "plans": explain(captured or []),
    }
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status")
    p = sub.add_parser("populate")
    p.add_argument("--checks", type=int, default=1_000_000)
    p.add_argument("--migrations-hash", required=True)
    s = sub.add_parser("sweep")
    s.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.command == "status":
        print(json.dumps(read_meta()))
    elif args.command == "populate":
        populate(args.checks, args.migrations_hash)
    else:
        sweep(args.repeat)


if __name__ == "__main__":
    main()
