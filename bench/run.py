"""Ping throughput of Tocsin against a bare WSGI reference, and the time of a 1,000-check sweep.

See bench/README.md. In short: fresh PostgreSQL databases for Tocsin and for the reference
(same migrations, same 1,000 check tokens), both served by gunicorn with the same settings,
driven by wrk at 8 and 32 connections in alternating rounds; then 1,000 checks made due at once
and swept. Prints a table and writes bench/var/results-<time>.json.

    .venv/bin/python bench/run.py            (or bench/run.sh; --help for the knobs)
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VAR = BENCH / "var"
VENV_BIN = Path(sys.executable).parent
SECRET_KEY = "bench-only-" + "k" * 40  # used by this benchmark only


def parse_args() -> argparse.Namespace:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description="Tocsin ping benchmark (not a test; never gates CI).")
    p.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    p.add_argument("--db", default="tocsin_bench", help="Tocsin's database (dropped, recreated)")
    p.add_argument("--ref-db", default="tocsin_bench_ref", help="the reference's database")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="flushed after sweeps")
    p.add_argument("--checks", type=int, default=1000)
    p.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    p.add_argument("--duration", type=int, default=12, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per level")
    p.add_argument("--method", choices=["GET", "POST"], default="GET")
    p.add_argument("--workers", type=int, default=cores)
    p.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    p.add_argument("--threads", type=int, default=4, help="per worker, for gthread")
    p.add_argument("--wrk-threads", type=int, default=min(cores, 4))
    p.add_argument("--ports", type=int, nargs=2, default=[8101, 8102])
    p.add_argument("--sweep-repeat", type=int, default=3)
    p.add_argument(
        "--reuse", action="store_true", help="keep the databases and tokens of the last run"
    )
    p.add_argument("--tocsin-app", default="config.wsgi:application")
    p.add_argument(
        "--url-options",
        default="prepare_threshold=0",
        help="query string for Tocsin's DATABASE_URL (\"\" for Django's defaults)",
    )
    p.add_argument(
        "--reference-prepare",
        default="",
        help='the reference\'s psycopg prepare_threshold: "" psycopg\'s default (5), "none" off',
    )
    p.add_argument("--pythonpath", default="", help="extra sys.path for gunicorn (experiments)")
    p.add_argument("--skip-pings", action="store_true")
    p.add_argument("--skip-sweep", action="store_true")
    return p.parse_args()


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk is still missing after apt-get install")


def machine(server: str) -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    gunicorn = subprocess.run(
        [str(VENV_BIN / "gunicorn"), "--version"], capture_output=True, text=True
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
        "synchronous_commit": sync_commit,
        "gunicorn": gunicorn.stdout.strip() or gunicorn.stderr.strip(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0].strip(),
    }


def recreate_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def django_env(args, database: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{args.server}/{database}"
        + (f"?{args.url_options}" if args.url_options else ""),
        REDIS_URL=args.redis,
        SECRET_KEY=SECRET_KEY,
        DEBUG="0",
        CONN_MAX_AGE="600",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TOCSIN_VAR_DIR=str(VAR / "tocsin"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def run_django(args, database: str, *argv: str) -> str:
    out = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env=django_env(args, database),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def prepare(args, tokens_path: Path) -> None:
    tokens_path.write_text("".join(f"{uuid.uuid4()}\n" for _ in range(args.checks)))
    for database in (args.db, args.ref_db):
        print(f"creating and migrating {database} ...", flush=True)
        recreate_database(args.server, database)
        run_django(args, database, "manage.py", "migrate", "--noinput", "-v", "0")
        # The same team, member and checks (same tokens) in both: identical rows and indexes.
        print(
            "  "
            + run_django(
                args, database, "bench/data.py", "populate", "--tokens", str(tokens_path)
            ).strip(),
            flush=True,
        )


class Server:
    """A gunicorn master we started; stopped by its own pid."""

    def __init__(self, name: str, app: str, port: int, env: dict, args, chdir: Path):
        self.name, self.port = name, port
        cmd = [
            str(VENV_BIN / "gunicorn"), app,
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(args.workers),
            "--worker-class", args.worker_class,
            "--chdir", str(chdir),
            "--log-level", "warning",
            "--keep-alive", "30",
        ]  # fmt: skip
        if args.worker_class == "gthread":
            cmd += ["--threads", str(args.threads)]
        if args.pythonpath:
            cmd += ["--pythonpath", args.pythonpath]
        self.log = (VAR / f"gunicorn-{name}.log").open("w")
        self.proc = subprocess.Popen(cmd, cwd=chdir, env=env, stdout=self.log, stderr=self.log)
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"gunicorn for {self.name} exited; see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        sys.exit(f"gunicorn for {self.name} did not listen within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


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
            ratios.append(t / ref)
        summary.append(
            {
                "connections": connections,
                **{f"{app}_{k}": v for app, d in by_app.items() for k, v in d.items()},
                "ratio_per_round": [round(x, 3) for x in ratios],
                "ratio": statistics.median(ratios),
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
        verdict = "ok" if s["ratio"] >= 0.75 else "BELOW 75 %"
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


def bench_sweep(args) -> list[dict]:
    out = run_django(
        args, args.db, "bench/data.py", "sweep",
        "--checks", str(args.checks), "--repeat", str(args.sweep_repeat),
    )  # fmt: skip
    records = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    print()
    print(
        f"Sweeps of {args.checks} checks due at once (sweep_due_checks on PostgreSQL, "
        "a sweeper every SWEEP_INTERVAL simulated on the database's timeline)"
    )
    for r in records:
        print(
            f"  repeat {r['repeat']}, {r['at']}: {r['seconds']:.3f} s  "
            f"({r['examined']} examined, {r['changed']} -> {r['to_status']}, "
            f"{r['pings_folded']} pings folded, {r['opened']} incidents opened, "
            f"{r['notifications']} outbox rows, {r['tasks_enqueued']} delivery tasks enqueued, "
            f"{r['errors']} errors)"
        )
    return records


def main() -> None:
    args = parse_args()
    VAR.mkdir(exist_ok=True)
    ensure_wrk()
    info = machine(args.server)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    print(
        f"gunicorn: {args.workers} workers, {args.worker_class}"
        + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
        + f"; Tocsin's DATABASE_URL options: {args.url_options or '(none)'}"
        + f"; reference prepare_threshold: {args.reference_prepare or 'psycopg default'}"
        + f"; wrk {args.method}, {args.duration} s per run, {args.rounds} rounds",
        flush=True,
    )
    tokens_path = VAR / "tokens.txt"
    if not (args.reuse and tokens_path.exists()):
        prepare(args, tokens_path)
    results = {"machine": info, "settings": vars(args)}
    if not args.skip_pings:
        pings = bench_pings(args, tokens_path)
        results["pings"] = pings
        results["summary"] = summarize(args, pings)
        print_summary(results["summary"], pings)
    if not args.skip_sweep:
        results["sweep"] = bench_sweep(args)
    out = VAR / f"results-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
