"""Ping throughput: Tocsin against a bare WSGI reference doing the same statement.

Both served by gunicorn with the same settings, driven by wrk (bench/pings.lua) at each
connection level in alternating rounds; see bench/README.md. bench/run.py drives it.
"""

import json
import os
import statistics
import subprocess
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from stack import BENCH, ROOT, Server, django_env, run_django


def recreate_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def database_exists(server: str, name: str) -> bool:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def migrate(args, database: str, *, fresh: bool) -> None:
    """Create (or, when `fresh`, recreate) the database and bring it to the current migrations."""
    if fresh or not database_exists(args.server, database):
        print(f"creating {database} ...", flush=True)
        recreate_database(args.server, database)
    print(f"migrating {database} ...", flush=True)
    run_django(args, database, "manage.py", "migrate", "--noinput", "-v", "0")


def prepare(args, tokens_path: Path) -> None:
    """Both databases migrated (the reference uses Tocsin's tables), with the same checks."""
    tokens_path.write_text("".join(f"{uuid.uuid4()}\n" for _ in range(args.checks)))
    for database in (args.db, args.ref_db):
        migrate(args, database, fresh=not args.reuse)
        # The same team, member and checks (same tokens) in both: identical rows and indexes.
        print(
            "  "
            + run_django(
                args, database, "bench/data.py", "populate", "--tokens", str(tokens_path)
            ).strip(),
            flush=True,
        )


def cpu_seconds(pids) -> dict[int, float]:
    """utime + stime of each process that still exists."""
    tick = os.sysconf("SC_CLK_TCK")
    result = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        result[pid] = (int(fields[11]) + int(fields[12])) / tick
    return result


def app_and_db_pids(args, server: "Server", database: str) -> tuple[list[int], list[int]]:
    """The gunicorn master and workers, and the PostgreSQL backends serving `database`."""
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    app = [server.proc.pid, *map(int, children.split())]
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
        ).fetchall()
    return app, [pid for (pid,) in rows]


def measure(
    args, server: "Server", database: str, connections: int, seconds: int, tokens_path: Path
) -> dict:
    """One wrk run, plus the CPU the app's processes and its database backends spent on it."""
    app_pids, db_pids = app_and_db_pids(args, server, database)
    app_before, db_before = cpu_seconds(app_pids), cpu_seconds(db_pids)
    result = wrk(args, server.port, connections, seconds, tokens_path)
    app_pids, db_pids = app_and_db_pids(args, server, database)
    app_after, db_after = cpu_seconds(app_pids), cpu_seconds(db_pids)
    answered = max(result["requests"] - result["errors"], 1)
    for key, before, after in (("app", app_before, app_after), ("db", db_before, db_after)):
        spent = sum(v - before.get(pid, 0.0) for pid, v in after.items())
        result[f"{key}_cpu_us"] = spent / answered * 1e6
    return result


def wrk(args, port: int, connections: int, seconds: int, tokens_path: Path) -> dict:
    cmd = [
        "wrk", "-t", str(min(args.wrk_threads, connections)), "-c", str(connections),
        "-d", f"{seconds}s", "--timeout", "10s", "-s", str(BENCH / "pings.lua"),
        f"http://127.0.0.1:{port}", "--", str(tokens_path), args.method,
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("{"))
    result = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(
        result[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return result


def count_pings(args, database: str) -> int:
    with psycopg.connect(f"{args.server}/{database}") as conn:
        return conn.execute("SELECT count(*) FROM checks_ping").fetchone()[0]


def bench_pings(args, tokens_path: Path) -> dict:
    tocsin_env = django_env(args, args.db)
    ref_env = dict(
        tocsin_env,
        REFERENCE_DATABASE_URL=f"{args.server}/{args.ref_db}",
        REFERENCE_PREPARE_THRESHOLD=args.reference_prepare,
    )
    databases = {"tocsin": args.db, "reference": args.ref_db}
    servers = {
        "tocsin": Server("tocsin", args.tocsin_app, args.ports[0], tocsin_env, args, ROOT),
        "reference": Server("reference", "reference_app:application", args.ports[1], ref_env,
                            args, BENCH),
    }  # fmt: skip
    answered = {"tocsin": 0, "reference": 0}
    runs = []
    try:
        for name, server in servers.items():
            warm = wrk(args, server.port, max(args.connections), args.warmup, tokens_path)
            answered[name] += warm["requests"] - warm["errors"]
            print(f"warm-up {name}: {warm['rps']:.0f} req/s", flush=True)
            if warm["errors"] > warm["requests"] // 100:
                # An app that answers errors (a statement that no longer fits the schema, say)
                # is fast at failing: its req/s would make a meaningless ratio.
                raise RuntimeError(
                    f"{name} answered {warm['errors']} of {warm['requests']} warm-up pings with "
                    f"an error; see {server.log_path}"
                )
        for r in range(args.rounds):
            for connections in args.connections:
                # Alternate who goes first, so that drift in a noisy machine hits both alike.
                order = ["tocsin", "reference"] if r % 2 == 0 else ["reference", "tocsin"]
                for name in order:
                    result = measure(
                        args,
                        servers[name],
                        databases[name],
                        connections,
                        args.duration,
                        tokens_path,
                    )
                    answered[name] += result["requests"] - result["errors"]
                    result.update(app=name, round=r + 1, connections=connections)
                    runs.append(result)
                    print(
                        f"round {r + 1} c={connections:<3} {name:<9} {result['rps']:8.0f} req/s"
                        f"  p50 {result['p50_us'] / 1000:6.2f} ms"
                        f"  p99 {result['p99_us'] / 1000:6.2f} ms"
                        f"  CPU/ping app {result['app_cpu_us']:4.0f} us"
                        f" db {result['db_cpu_us']:4.0f} us  errors {result['errors']}",
                        flush=True,
                    )
    finally:
        for server in servers.values():
            server.stop()
    rows = {"tocsin": count_pings(args, args.db), "reference": count_pings(args, args.ref_db)}
    return {"runs": runs, "answered": answered, "ping_rows": rows}


def summarize(args, pings: dict) -> list[dict]:
    summary = []
    for connections in args.connections:
        by_app = {}
        for app in ("tocsin", "reference"):
            runs = [x for x in pings["runs"] if x["app"] == app and x["connections"] == connections]
            by_app[app] = {
                "rps": statistics.median(x["rps"] for x in runs),
                "p50_ms": statistics.median(x["p50_us"] for x in runs) / 1000,
                "p99_ms": statistics.median(x["p99_us"] for x in runs) / 1000,
                "errors": sum(x["errors"] for x in runs),
                "app_cpu_us": statistics.median(x["app_cpu_us"] for x in runs),
                "db_cpu_us": statistics.median(x["db_cpu_us"] for x in runs),
            }
        ratios = []
        for r in range(1, args.rounds + 1):
            t, ref = (
                next(
                    x["rps"]
                    for x in pings["runs"]
                    if x["app"] == app and x["round"] == r and x["connections"] == connections
                )
                for app in ("tocsin", "reference")
            )
            ratios.append(t / ref if ref else 0.0)
        summary.append(
            {
                "connections": connections,
                **{f"{app}_{k}": v for app, d in by_app.items() for k, v in d.items()},
                "ratio_per_round": [round(x, 3) for x in ratios],
                "ratio": statistics.median(ratios),
                "p99_ratio": by_app["tocsin"]["p99_ms"] / by_app["reference"]["p99_ms"]
                if by_app["reference"]["p99_ms"]
                else None,
            }
        )
    return summary


def print_summary(summary: list[dict], pings: dict) -> None:
    print()
    print("Ping throughput (median of rounds)")
    print(
        f"{'conns':>5} | {'Tocsin req/s':>12} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'ref req/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>6}  per round"
    )
    for s in summary:
        verdict = "ok" if s["ratio"] >= 0.9 else "BELOW 90 %"
        print(
            f"{s['connections']:>5} | {s['tocsin_rps']:>12.0f} {s['tocsin_p50_ms']:>7.2f} "
            f"{s['tocsin_p99_ms']:>7.2f} | {s['reference_rps']:>9.0f} "
            f"{s['reference_p50_ms']:>7.2f} {s['reference_p99_ms']:>7.2f} | "
            f"{s['ratio']:>5.0%}  {', '.join(f'{x:.0%}' for x in s['ratio_per_round'])}  {verdict}"
        )
    print()
    print("CPU per ping (median of rounds): app = gunicorn processes, db = its PostgreSQL backends")
    for s in summary:
        print(
            f"{s['connections']:>5} conns | Tocsin app {s['tocsin_app_cpu_us']:4.0f} us, "
            f"db {s['tocsin_db_cpu_us']:4.0f} us | "
            f"reference app {s['reference_app_cpu_us']:4.0f} us,"
            f" db {s['reference_db_cpu_us']:4.0f} us"
        )
    print()
    for app in ("tocsin", "reference"):
        print(
            f"{app}: {pings['answered'][app]} pings answered without error, "
            f"{pings['ping_rows'][app]} Ping rows in its database"
        )
