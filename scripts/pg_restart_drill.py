#!/usr/bin/env python3
"""PostgreSQL restart drill (issue 14): are pings kept when the database restarts under them?

    .venv/bin/python scripts/pg_restart_drill.py [--seconds 40] [--rate 40] [--restarts 2]
                                                 [--down 3] [--json]

Starts a PostgreSQL of its own (initdb into a temporary folder, a free port, trust auth on
127.0.0.1 only), migrates Tocsin into it, creates one check (bench/data.py populate), and
serves the ping endpoint with the production command (gunicorn with config/gunicorn.py).
Client threads then send numbered log pings at --rate per second for --seconds, while that
PostgreSQL is stopped (fast shutdown: open connections are cut) and started again --restarts
times, staying down --down seconds each time. At the end it counts, per ping:

    answered   the server said 200 OK
    refused    the server answered something else (a 5xx while the database is down)
    no answer  the connection failed or timed out
    stored     a Ping row holds its body
    lost       answered 200 but not stored: must be 0
    unacked    stored without a 200 (the answer was cut): a client retry would send it twice

A 5xx tells the sender to try again (the `tocsin` client does), so "refused" pings are not lost
for a client that retries; "lost" ones would be. Everything it started is stopped by its own
pid, and the folder is removed. Needs the PostgreSQL server binaries (initdb, pg_ctl) on PATH;
run as root it runs them as the `postgres` user (initdb refuses root).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECRET_KEY = "pg-restart-drill-only-" + "k" * 40


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnPostgres:
    """A throwaway cluster: initdb, start, stop, start again, remove."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, *argv: str) -> None:
        subprocess.run([*self.as_postgres, *argv], check=True, capture_output=True)

    def init(self) -> None:
        if self.as_postgres:
            shutil.chown(self.folder, user="postgres")
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "postgres.log")
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        # Fast shutdown: the server ends every session at once, as a restart by an operator or
        # a failover does; Tocsin's connections break mid-use.
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


def django_env(database_url: str, var_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GUNICORN_CMD_ARGS")}
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1",
        TOCSIN_VAR_DIR=str(var_dir),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    return env


def post(url: str, body: bytes, timeout: float) -> int | str:
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - our http URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return type(exc).__name__


def wait_for_web(base_url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("gunicorn exited; see its log")
        if post(f"{base_url}/ping/00000000-0000-0000-0000-000000000000", b"", 5) == 404:
            return
        time.sleep(0.2)
    sys.exit("gunicorn did not answer")


class Pinger:
    """Client threads that share one numbered sequence of pings at `rate` per second."""

    def __init__(self, url: str, rate: float, threads: int = 4):
        self.url, self.interval = url, threads / rate
        self.answers: dict[bytes, int | str] = {}
        self.stopping = threading.Event()
        self.counter = iter(range(10**9))
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self) -> None:
        while not self.stopping.is_set():
            with self.lock:
                body = b"drill %d" % next(self.counter)
            started = time.monotonic()
            self.answers[body] = post(self.url, body, timeout=10)
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> Pinger:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)


def stored_bodies(env: dict[str, str], token: str) -> set[bytes]:
    code = (
        "import json; from apps.checks.models import Ping; "
        f"print(json.dumps([bytes(b).decode() for b in Ping.objects.filter(owner_id='{token}')"
        ".values_list('body', flat=True)]))"
    )
    out = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {body.encode() for body in json.loads(out.strip().splitlines()[-1])}


def drill(args: argparse.Namespace, folder: Path) -> dict:
    postgres = OwnPostgres(folder)
    postgres.init()
    postgres.start()
    server = None
    try:
        postgres.run("createdb", "-h", "127.0.0.1", "-p", str(postgres.port), "tocsin")
        port = free_port()
        env = django_env(postgres.url("tocsin"), folder / "var", port)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                       check=True, capture_output=True)  # fmt: skip
        token = str(uuid.uuid4())
        (folder / "tokens.txt").write_text(token + "\n")
        populate = ["bench/data.py", "populate", "--tokens", str(folder / "tokens.txt")]
        subprocess.run([PYTHON, *populate], cwd=ROOT, env=env, check=True, capture_output=True)
        with open(folder / "gunicorn.log", "wb") as log:
            server = subprocess.Popen(
                [PYTHON, "-m", "gunicorn", "--config", "python:config.gunicorn", "config.wsgi"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        wait_for_web(base_url, server)
        outages = []
        started = time.monotonic()
        with Pinger(f"{base_url}/ping/{token}/log", args.rate) as pinger:
            # Restarts spread over the run, each followed by steady pinging.
            gap = args.seconds / (args.restarts + 1)
            for n in range(args.restarts):
                time.sleep(max(0.0, started + gap * (n + 1) - time.monotonic()))
                down_at = time.monotonic()
                postgres.stop()
                time.sleep(args.down)
                postgres.start()
                outages.append(round(time.monotonic() - down_at, 1))
            time.sleep(max(0.0, started + args.seconds - time.monotonic()))
        answers = dict(pinger.answers)
        stored = stored_bodies(env, token)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with contextlib.suppress(subprocess.CalledProcessError):
            postgres.stop()
    ok = {body for body, status in answers.items() if status == 200}
    refused = {body: s for body, s in answers.items() if isinstance(s, int) and s != 200}
    no_answer = {body: s for body, s in answers.items() if isinstance(s, str)}
    return {
        "seconds": args.seconds,
        "rate_per_second": args.rate,
        "restarts": args.restarts,
        "outages_seconds": outages,
        "sent": len(answers),
        "answered": len(ok),
        "refused": len(refused),
        "refused_statuses": sorted({str(s) for s in refused.values()}),
        "no_answer": len(no_answer),
        "no_answer_errors": sorted(set(no_answer.values())),
        "stored": len(stored & set(answers)),
        "lost": len(ok - stored),
        "unacked": len((stored & set(answers)) - ok),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--rate", type=float, default=40.0, help="pings per second")
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--down", type=float, default=3.0, help="seconds down per restart")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args()
    for tool in ("initdb", "pg_ctl"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: the drill needs the PostgreSQL server binaries on PATH")
    folder = Path(tempfile.mkdtemp(prefix="tocsin-pg-drill-"))
    try:
        report = drill(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>18}: {value}")
    return 1 if report["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
