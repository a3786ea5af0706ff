"""Every figure of issue 11 in one run on PostgreSQL: the ping rate against a bare reference,
the 1,000-check sweeps, the fold against ingest, the idle sweep over a million checks, and
two runs on the real stack (deadlines passing together; a minute of pings at full speed).

See bench/README.md. Prints each scenario as it ends, then one table of every figure with
the issue's targets, and writes bench/var/results-<time>.json.

    .venv/bin/python bench/run.py                  (or bench/run.sh; --help for the knobs)
    bench/run.sh --smoke                           every scenario, small (a few minutes)
    bench/run.sh --only sweeps,idle                some scenarios only
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import traceback
from datetime import UTC, datetime

import psycopg
import scenarios
from ping_rate import bench_pings, migrate, prepare, print_summary, summarize
from stack import ROOT, VAR, VENV_BIN

SCENARIOS = ("pings", "sweeps", "fold", "idle", "e2e", "soak")

# What --smoke changes: every scenario small, so that the whole command takes minutes.
SMOKE = {
    "duration": 2,
    "warmup": 1,
    "rounds": 1,
    "sweep_checks": 200,
    "sweep_repeat": 1,
    "fold_checks": 200,
    "fold_pings_per_check": 5,
    "idle_checks": 20_000,
    "idle_repeat": 3,
    "e2e_checks": 100,
    "e2e_lead": 12.0,
    "soak_checks": 100,
    "soak_seconds": 10,
}


def scenario_list(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in names if x not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or '(none)'}; choose from {', '.join(SCENARIOS)}"
        )
    return names


def grouping_modes(text: str) -> list[str]:
    modes = [x.strip() for x in text.split(",") if x.strip()]
    if not modes or any(m not in ("off", "on") for m in modes):
        raise argparse.ArgumentTypeError('give "off", "on" or "off,on"')
    return modes


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier() or not name.isupper():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE with an upper-case NAME")
    return name, value


def parse_args(argv=None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description="Tocsin's benchmarks (not a test; never gates CI).")
    p.add_argument(
        "--only",
        type=scenario_list,
        default=list(SCENARIOS),
        help=f"comma-separated scenarios, run in this order: {','.join(SCENARIOS)}",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="small sizes for every scenario (a knob given explicitly still wins)",
    )
    p.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    p.add_argument("--db", default="tocsin_bench", help="Tocsin's database (recreated)")
    p.add_argument("--ref-db", default="tocsin_bench_ref", help="the reference's database")
    p.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/15",
        help="a Redis database for the benchmark alone: it is flushed",
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep the databases of the last run (migrating them if needed)",
    )
    p.add_argument(
        "--url-options",
        default="prepare_threshold=0",
        help="query string for Tocsin's DATABASE_URL (\"\" for Django's defaults)",
    )
    # Processes.
    p.add_argument("--workers", type=positive_int, default=cores, help="gunicorn workers")
    p.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    p.add_argument("--threads", type=positive_int, default=4, help="per worker, for gthread")
    p.add_argument(
        "--celery-concurrency",
        type=positive_int,
        default=2,
        help="processes of the Celery worker on the real stack",
    )
    p.add_argument("--wrk-threads", type=positive_int, default=min(cores, 4))
    p.add_argument("--ports", type=int, nargs=2, default=[8101, 8102])
    p.add_argument("--receiver-port", type=int, default=8109)
    p.add_argument(
        "--stack-env",
        type=env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the real stack (e2e, soak), e.g. BLIND_WINDOW_DETECTION=0; repeatable",
    )
    p.add_argument("--tocsin-app", default="config.wsgi:application")
    p.add_argument("--pythonpath", default="", help="extra sys.path for gunicorn (experiments)")
    # pings: Tocsin against the reference.
    g = p.add_argument_group("pings")
    g.add_argument("--checks", type=positive_int, default=1000, help="checks pinged round robin")
    g.add_argument("--connections", type=positive_int, nargs="+", default=[8, 32])
    g.add_argument("--duration", type=positive_int, default=12, help="seconds per measurement")
    g.add_argument("--warmup", type=positive_int, default=3, help="seconds per server")
    g.add_argument("--rounds", type=positive_int, default=3, help="alternating rounds per level")
    g.add_argument("--method", choices=["GET", "POST"], default="GET")
    g.add_argument(
        "--reference-prepare",
        default="",
        help='the reference\'s psycopg prepare_threshold: "" default (5), "none" off',
    )
    # sweeps.
    g = p.add_argument_group("sweeps")
    g.add_argument("--sweep-checks", type=positive_int, default=1000)
    g.add_argument("--sweep-repeat", type=positive_int, default=3)
    # fold.
    g = p.add_argument_group("fold")
    g.add_argument("--fold-checks", type=positive_int, default=1000)
    g.add_argument("--fold-pings-per-check", type=positive_int, default=22)
    g.add_argument("--fold-connections", type=positive_int, default=32)
    g.add_argument("--fold-timeout", type=float, default=300.0, help="seconds for the ingest")
    # idle.
    g = p.add_argument_group("idle")
    g.add_argument("--idle-db", default="tocsin_bench_idle", help="kept between runs")
    g.add_argument("--idle-checks", type=positive_int, default=1_000_000)
    g.add_argument("--idle-repeat", type=positive_int, default=5)
    g.add_argument("--idle-rebuild", action="store_true", help="rebuild even when current")
    # e2e.
    g = p.add_argument_group("e2e")
    g.add_argument("--e2e-checks", type=positive_int, default=1000)
    g.add_argument(
        "--e2e-channels",
        type=positive_int,
        default=1,
        help="webhook channels (one policy each) the checks are spread over",
    )
    g.add_argument("--e2e-grouping", type=grouping_modes, default=["off", "on"])
    g.add_argument(
        "--e2e-lead",
        type=float,
        default=20.0,
        help="seconds between the pings and the deadline (the stack folds them first)",
    )
    g.add_argument(
        "--e2e-timeout",
        type=float,
        default=300.0,
        help="seconds after the pings to wait for every notification",
    )
    # soak.
    g = p.add_argument_group("soak")
    g.add_argument("--soak-checks", type=positive_int, default=1000)
    g.add_argument("--soak-seconds", type=positive_int, default=60)
    g.add_argument("--soak-connections", type=positive_int, default=32)
    g.add_argument("--soak-drain-timeout", type=float, default=120.0)
    smoke = "--smoke" in (sys.argv[1:] if argv is None else argv)
    if smoke:
        p.set_defaults(**SMOKE)
    return p.parse_args(argv)


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
    for line in open("/proc/cpuinfo").read().splitlines():  # noqa: SIM115 - tiny file
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in open("/proc/meminfo").read().splitlines():  # noqa: SIM115 - tiny file
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    gunicorn = subprocess.run(
        [str(VENV_BIN / "gunicorn"), "--version"], capture_output=True, text=True
    )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
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
        "uptime_at_start": uptime,
    }


def run_pings(args) -> dict:
    tokens_path = VAR / "tokens.txt"
    prepare(args, tokens_path)
    pings = bench_pings(args, tokens_path)
    summary = summarize(args, pings)
    print_summary(summary, pings)
    return {**pings, "summary": summary}


def median_sweep(results: dict, to_status: str) -> float | None:
    runs = [r["seconds"] for r in results.get("runs", []) if r["to_status"] == to_status]
    return statistics.median(runs) if runs else None


def fmt(value, spec: str, unit: str = "") -> str:
    return "not measured" if value is None else f"{value:{spec}}{unit}"


def figures(results: dict) -> list[tuple[str, str, str]]:
    """(what, now, target) for every figure of issue 11 this run measured."""
    rows = []
    s = results.get("scenarios", {})
    if "pings" in s:
        by_conns = {x["connections"]: x for x in s["pings"]["summary"]}
        ratios = " / ".join(f"{by_conns[c]['ratio']:.0%}" for c in sorted(by_conns))
        levels = " / ".join(str(c) for c in sorted(by_conns))
        rows.append((f"ping req/s vs the bare reference, {levels} connections", ratios,
                     ">= 90 % at both"))  # fmt: skip
        if 8 in by_conns:
            x = by_conns[8]
            rows.append((
                "ping p99 vs the reference's p99, 8 connections",
                f"{x['tocsin_p99_ms']:.1f} vs {x['reference_p99_ms']:.1f} ms "
                f"({fmt(x['p99_ratio'], '.1f', 'x')})",
                "<= 1.5x",
            ))  # fmt: skip
    if "sweeps" in s:
        n = results["settings"]["sweep_checks"]
        for label, status, target in (
            (f"{n} checks with one new success ping each: the sweep that folds them", "up",
             "<= 0.5 s"),
            (f"{n} checks up -> late in one sweep", "late", "<= 0.2 s"),
            (f"{n} checks late -> down, with incidents, timeline and outbox rows", "down",
             "<= 1 s"),
        ):  # fmt: skip
            rows.append((label, fmt(median_sweep(s["sweeps"], status), ".2f", " s"), target))
    if "fold" in s:
        f = s["fold"]
        rows.append((
            f"{f['recorded']:,} pings over {results['settings']['fold_checks']:,} checks: "
            "folded per second (vs ingest in the same run)",
            f"{fmt(f['folded_per_s'], ',.0f', ' /s')} vs {fmt(f['ingest_per_s'], ',.0f', ' /s')}",
            ">= the ingest rate",
        ))  # fmt: skip
    if "idle" in s:
        i = s["idle"]
        rows.append((f"{i['checks']:,} idle checks, none due: one sweep",
                     f"{i['median_ms']:.1f} ms", "< 10 ms"))  # fmt: skip
    for mode, e in s.get("e2e", {}).items():
        rows.append((
            f"{e['checks']:,} checks down at once -> webhooks, grouping {mode}: "
            "first / last after the deadline",
            f"{fmt(e['first_webhook_after_s'], '.1f', ' s')} / "
            f"{fmt(e['last_webhook_after_s'], '.1f', ' s')}, {e['messages']} messages"
            + (" (timed out)" if e["timed_out"] else ""),
            "all in <= 5 s" if mode == "off" else "-",
        ))  # fmt: skip
    if "soak" in s:
        k = s["soak"]
        false = sum(k["false_flips"].values())
        rows.append((
            f"{results['settings']['soak_seconds']} s of pings at full speed over "
            f"{results['settings']['soak_checks']:,} checks: largest backlog, false flips",
            f"{k['max_unfolded']:,} unfolded pings at {k['ingest_per_s']:,.0f} /s; "
            f"{false} false flips",
            "small backlog; 0 false flips",
        ))  # fmt: skip
    return rows


def print_figures(results: dict) -> None:
    rows = figures(results)
    if not rows:
        return
    width = max(len(r[0]) for r in rows)
    now_width = max(len(r[1]) for r in rows)
    print(f"\nIssue 11 figures ({results['machine']['date']}, load at start "
          f"{results['load']['start']}, at end {results['load']['end']})")  # fmt: skip
    print(f"{'what':<{width}} | {'now':<{now_width}} | target")
    print(f"{'-' * width}-|-{'-' * now_width}-|-------")
    for what, now, target in rows:
        print(f"{what:<{width}} | {now:<{now_width}} | {target}")
    for name, error in results.get("errors", {}).items():
        print(f"{name}: FAILED ({error.splitlines()[-1]})")


def main(argv=None) -> int:
    args = parse_args(argv)
    VAR.mkdir(exist_ok=True)
    ensure_wrk()
    info = machine(args.server)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    print(f"scenarios: {', '.join(x for x in SCENARIOS if x in args.only)}"
          + (" (smoke sizes)" if args.smoke else ""), flush=True)  # fmt: skip
    results = {
        "machine": info,
        "settings": vars(args),
        "load": {"start": scenarios.load()},
        "scenarios": {},
        "errors": {},
    }
    out = VAR / f"results-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    if any(x in args.only for x in ("sweeps", "fold", "e2e", "soak")) and "pings" not in args.only:
        migrate(args, args.db, fresh=not args.reuse)  # pings prepares its own databases
    runners = {
        "pings": run_pings,
        "sweeps": scenarios.bench_sweeps,
        "fold": scenarios.bench_fold,
        "idle": scenarios.bench_idle,
        "e2e": scenarios.bench_e2e,
        "soak": scenarios.bench_soak,
    }
    for name in SCENARIOS:
        if name not in args.only:
            continue
        print(f"\n== {name} (load {scenarios.load()})", flush=True)
        started = datetime.now(UTC)
        try:
            result = runners[name](args)
        except Exception:
            # One scenario failing must not lose the others' figures.
            results["errors"][name] = traceback.format_exc()
            print(results["errors"][name], file=sys.stderr, flush=True)
            continue
        results["scenarios"][name] = result
        results["load"][name] = scenarios.load()
        results["seconds"] = {
            **results.get("seconds", {}),
            name: round((datetime.now(UTC) - started).total_seconds(), 1),
        }
        out.write_text(json.dumps(results, indent=2, default=str))  # a partial run keeps it
    results["load"]["end"] = scenarios.load()
    results["figures"] = figures(results)
    out.write_text(json.dumps(results, indent=2, default=str))
    print_figures(results)
    print(f"\nresults written to {out.relative_to(ROOT)}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
