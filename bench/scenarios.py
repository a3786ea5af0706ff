"""The scenarios after the ping throughput: sweeps, the fold against ingest, the idle sweep over
a million checks, and the two runs on the real stack. Each returns a dict for the JSON; the
Django-side work happens in bench/data.py, idle.py and live.py (run as scripts, so that this
process imports no Django and each measurement starts from a fresh interpreter).
"""

import hashlib
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import psycopg
from ping_rate import database_exists, migrate, recreate_database
from stack import (
    BENCH,
    ROOT,
    VAR,
    Receiver,
    Server,
    django_env,
    last_json,
    run_django,
    tocsin_stack,
)

GROUPING_OFF = {"NOTIFICATION_GROUP_WAIT": "0", "NOTIFICATION_GROUP_INTERVAL": "0"}
# Grouping on means the settings' defaults: nothing is set, whatever the defaults become.
GROUPING_ON: dict[str, str] = {}


def load() -> str:
    """The load averages as `uptime` prints them: 1, 5 and 15 minutes."""
    return " ".join(open("/proc/loadavg").read().split()[:3])


def bench_sweeps(args) -> dict:
    out = run_django(
        args, args.db, "bench/data.py", "sweep",
        "--checks", str(args.sweep_checks), "--repeat", str(args.sweep_repeat),
    )  # fmt: skip
    records = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    print(
        f"\nSweeps of {args.sweep_checks} checks due at once (sweep_due_checks, simulated timeline)"
    )
    for r in records:
        print(
            f"  repeat {r['repeat']}, {r['at']}: {r['seconds']:.3f} s  "
            f"({r['examined']} examined, {r['changed']} -> {r['to_status']}, "
            f"{r['pings_folded']} pings folded, {r['opened']} incidents opened, "
            f"{r['timeline_events']} timeline events, {r['notifications']} outbox rows, "
            f"{r['tasks_enqueued']} tasks enqueued, {r['errors']} errors)",
            flush=True,
        )
    return {"runs": records}


def count_ping_rows(args, database: str) -> int:
    with psycopg.connect(f"{args.server}/{database}") as conn:
        return conn.execute("SELECT count(*) FROM checks_ping").fetchone()[0]


def bench_fold(args) -> dict:
    """`fold_checks` x `fold_pings_per_check` pings over HTTP as fast as Tocsin takes them
    (no sweeper running), then swept until all are folded: folded/s against ingest/s."""
    tokens = VAR / "fold-tokens.txt"
    run_django(
        args, args.db, "bench/data.py", "fold-setup",
        "--checks", str(args.fold_checks), "--tokens", str(tokens),
    )  # fmt: skip
    expected = args.fold_checks * args.fold_pings_per_check
    threads = min(args.wrk_threads, args.fold_connections)
    server = Server("fold", args.tocsin_app, args.ports[0], django_env(args, args.db), args, ROOT)
    try:
        cmd = [
            "wrk", "-t", str(threads), "-c", str(args.fold_connections), "-d", "3600s",
            "--timeout", "10s", "-s", str(BENCH / "pings_counted.lua"),
            f"http://127.0.0.1:{server.port}", "--",
            str(tokens), str(args.fold_pings_per_check), str(threads),
        ]  # fmt: skip
        wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + args.fold_timeout
        # wrk's threads stop after their share, but its main thread sleeps until -d: it is
        # interrupted (and prints its summary) once every ping has its row, or once rows stop
        # coming (a ping answered 503 under load has none; wrk counts it as a status error).
        rows, last_change = 0, time.monotonic()
        while rows < expected and time.monotonic() < deadline and wrk.poll() is None:
            time.sleep(0.2)
            now_rows = count_ping_rows(args, args.db)
            if now_rows != rows:
                rows, last_change = now_rows, time.monotonic()
            elif rows and time.monotonic() - last_change > 5:
                break
        wrk.send_signal(signal.SIGINT)
        wrk_out, _ = wrk.communicate(timeout=30)
    finally:
        server.stop()
    client = last_json(wrk_out)
    result = last_json(
        run_django(args, args.db, "bench/data.py", "fold", "--expect", str(expected))
    )
    result["wrk"] = client
    print(
        f"\nFold of {result['recorded']} pings over {args.fold_checks} checks "
        f"({args.fold_pings_per_check} each): ingested at {result['ingest_per_s']} /s "
        f"over {result['arrival_span_s']} s; folded at {result['folded_per_s']} /s "
        f"in {len(result['sweeps'])} sweep(s), {result['sweep_seconds']} s; "
        f"{result['left_unfolded']} left unfolded",
        flush=True,
    )
    return result


def migrations_hash() -> str:
    """Every migration file's path and content: the schema the idle database was built for."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("apps/*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def idle_database_is_current(args, wanted_hash: str) -> tuple[bool, str]:
    if not database_exists(args.server, args.idle_db):
        return False, "it does not exist"
    try:
        meta = last_json(run_django(args, args.idle_db, "bench/idle.py", "status"))
    except subprocess.CalledProcessError:
        return False, "it could not be read"
    if meta.get("migrations_hash") != wanted_hash:
        return False, "the migrations changed" if meta else "it was never filled"
    if int(meta.get("checks", 0)) != args.idle_checks:
        return False, f"it holds {meta.get('checks')} checks"
    earliest = datetime.fromisoformat(meta["earliest_due"])
    if (earliest - datetime.now(UTC)).days < 1:
        return False, "its deadlines come due soon"
    return True, f"migrations hash {wanted_hash[:12]}, {args.idle_checks} checks"


def bench_idle(args) -> dict:
    wanted = migrations_hash()
    current, why = idle_database_is_current(args, wanted)
    built = None
    if current and not args.idle_rebuild:
        print(f"\nidle: reusing {args.idle_db} ({why})", flush=True)
    else:
        print(f"\nidle: building {args.idle_db} ({why if not current else 'rebuild asked'})")
        started = time.monotonic()
        recreate_database(args.server, args.idle_db)
        migrate(args, args.idle_db, fresh=False)
        run_django(
            args, args.idle_db, "bench/idle.py", "populate",
            "--checks", str(args.idle_checks), "--migrations-hash", wanted,
        )  # fmt: skip
        built = round(time.monotonic() - started, 1)
    result = last_json(
        run_django(args, args.idle_db, "bench/idle.py", "sweep", "--repeat", str(args.idle_repeat))
    )
    result.update(migrations_hash=wanted, reused=built is None, build_seconds=built)
    print(
        f"Idle sweep over {result['checks']:,} checks ({result['due']} due): median "
        f"{result['median_ms']} ms of {result['sweep_ms']}, {result['queries_per_sweep']} queries",
        flush=True,
    )
    for plan in result["plans"]:
        print(f"  {plan['ms_in_sweep']:7.1f} ms  {plan['sql'][:90]}", flush=True)
    for plan in result["plans"]:
        if plan["is_claim"]:
            print("claim query plan:\n  " + plan["plan"].replace("\n", "\n  "), flush=True)
            break
    return result


def bench_e2e(args) -> dict:
    """On the real stack, once with grouping off and once with the defaults."""
    results = {}
    modes = {"off": GROUPING_OFF, "on": GROUPING_ON}
    for mode in args.e2e_grouping:
        env_extra = {"OUTBOUND_ALLOW_LOOPBACK": "1", **modes[mode], **dict(args.stack_env)}
        log = VAR / "receiver.jsonl"
        receiver = Receiver(args.receiver_port, log)
        try:
            run_django(
                args, args.db, "bench/live.py", "e2e-setup",
                "--checks", str(args.e2e_checks), "--receiver", receiver.url,
                "--channels", str(args.e2e_channels),
            )  # fmt: skip
            flush_redis(args)
            load_before = load()
            with tocsin_stack(args, args.db, env_extra=env_extra, label=f"e2e-{mode}"):
                out = run_django(
                    args, args.db, "bench/live.py", "e2e-run",
                    "--lead", str(args.e2e_lead), "--receiver-log", str(log),
                    "--timeout", str(args.e2e_timeout),
                    env_extra=env_extra,
                )  # fmt: skip
        finally:
            receiver.stop()
        result = last_json(out)
        result.update(grouping=mode, env=env_extra, load_before=load_before, load_after=load())
        results[mode] = result
        print(
            f"\nEnd to end, grouping {mode}: {result['checks']} checks down at once; first webhook "
            f"{result['first_webhook_after_s']} s after the deadline, last "
            f"{result['last_webhook_after_s']} s; {result['messages']} messages carrying "
            f"{result['incidents_in_messages']} incidents; "
            f"notifications {result['notifications']}; checks {result['statuses']}"
            + ("; TIMED OUT" if result["timed_out"] else ""),
            flush=True,
        )
    return results


def bench_soak(args) -> dict:
    """`soak_seconds` of wrk at full speed over `soak_checks` checks while worker and beat
    run: the largest backlog of unfolded pings and any false late/down/unknown flip."""
    tokens = VAR / "soak-tokens.txt"
    stop_file = VAR / "soak.stop"
    stop_file.unlink(missing_ok=True)
    run_django(
        args, args.db, "bench/live.py", "soak-setup",
        "--checks", str(args.soak_checks), "--tokens", str(tokens),
    )  # fmt: skip
    flush_redis(args)
    load_before = load()
    with tocsin_stack(args, args.db, env_extra=dict(args.stack_env), label="soak") as stack:
        watcher = subprocess.Popen(
            [sys.executable, "bench/live.py", "soak-watch", "--stop-file", str(stop_file),
             "--drain-timeout", str(args.soak_drain_timeout)],
            cwd=ROOT, env=django_env(args, args.db), stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            ready = watcher.stdout.readline()  # the stack swept once: it is up
            if '"ready"' not in ready:
                raise RuntimeError(f"the soak watcher did not start: {ready!r}")
            threads = min(args.wrk_threads, args.soak_connections)
            cmd = [
                "wrk", "-t", str(threads), "-c", str(args.soak_connections),
                "-d", f"{args.soak_seconds}s", "--timeout", "10s",
                "-s", str(BENCH / "pings.lua"), f"http://127.0.0.1:{stack[0].port}",
                "--", str(tokens), "GET",
            ]  # fmt: skip
            client = last_json(
                subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            )
            stop_file.write_text("wrk finished\n")
            out, _ = watcher.communicate(timeout=args.soak_drain_timeout + 60)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
    result = last_json(out)
    seconds = client["duration_us"] / 1e6
    result.update(
        wrk=client,
        ingest_per_s=round(client["requests"] / seconds, 1),
        load_before=load_before,
        load_after=load(),
    )
    print(
        f"\nSoak: {args.soak_seconds} s of pings at {result['ingest_per_s']} /s over "
        f"{args.soak_checks} checks with worker and beat: largest backlog "
        f"{result['max_unfolded']} unfolded pings ({result['max_checks_behind']} checks behind); "
        f"drained {result['drain_s']} s after wrk stopped; false flips {result['false_flips']}",
        flush=True,
    )
    return result


def flush_redis(args) -> None:
    """The benchmark's own Redis database: tasks a previous run left must not reach this one."""
    import redis

    redis.Redis.from_url(args.redis).flushdb()
