#!/usr/bin/env python3
"""The two README commands, on nothing but Python 3.11+ and the standard library.

    python3 scripts/dev.py run           # venv, install, migrate, demo login, web + worker + beat
    python3 scripts/dev.py test [args]   # venv, install, then pytest over the whole suite

The virtualenv lives in `.venv`. The project is (re)installed with its dev extras only when
pyproject.toml changed since the last install: a stamp file in the venv holds its hash.

`run` keeps web, Celery worker and Celery beat in the foreground. Ctrl-C (SIGINT) or SIGTERM stops
all three; when one of them dies the others are stopped and the exit code is non-zero. The
functions below (`service_commands`, `start_services`, `supervise`, `serve`) are importable so
that tests/test_dev_run.py starts the same processes the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP_NAME = ".tocsin-install-stamp"
DEFAULT_PORT = 8000
# How long a service gets to stop after its stop signal before it is killed. `dev.py run` stops
# within 2 s (issue 14): web ends at once on SIGTERM, beat in under a second, and the embedded
# worker looks at its stop flag every 0.2 s (config/filesystem_broker.py). A task cut short by
# the kill is safe: every task is idempotent and the beat's scans redo what was not committed.
STOP_TIMEOUT = 1.8
# Celery warns when its worker runs as root, which is the rule in a dev container and nothing a
# newcomer can act on there; the Dockerfile runs the worker as its own user.
QUIET_ROOT_WARNING = [
    "-W",
    "ignore:You're running the worker with superuser privileges:UserWarning",
]


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    # How the supervisor asks it to stop. Celery takes SIGINT as a warm shutdown (a second one
    # is a cold one).
    stop_signal: int = signal.SIGINT


@dataclass(frozen=True)
class Running:
    service: Service
    proc: subprocess.Popen
    relay: threading.Thread


# --- bootstrap -------------------------------------------------------------------------------


def require_python() -> None:
    # This file runs under whatever `python3` the machine has, which may be older than ours.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"Tocsin needs Python 3.11 or newer; this is {sys.version.split()[0]}.")


def venv_python(venv: Path = VENV) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def ensure_venv(venv: Path = VENV) -> Path:
    """Create the virtualenv if it is missing; return its interpreter."""
    python = venv_python(venv)
    if not python.exists():
        print(f"==> creating virtualenv {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return python


def project_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_installed(python: Path, venv: Path = VENV) -> None:
    """`pip install -e '.[dev]'` unless the stamp says this pyproject.toml is installed already.
    The stamp is written only after pip succeeded, so an interrupted install is retried."""
    stamp = venv / STAMP_NAME
    wanted = project_hash()
    if stamp.exists() and stamp.read_text().strip() == wanted:
        return
    print("==> installing Tocsin with its dev extras (pyproject.toml changed)", flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-e", ".[dev]"], cwd=ROOT, check=True
    )
    stamp.write_text(wanted + "\n")


def bootstrap() -> Path:
    require_python()
    python = ensure_venv()
    ensure_installed(python)
    return python


# --- the dev run -----------------------------------------------------------------------------


def var_dir(env: dict[str, str]) -> Path:
    """Where settings keep SQLite, the filesystem broker and mail; beat's schedule too."""
    return Path(env.get("TOCSIN_VAR_DIR") or ROOT / "var")


def dev_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the dev run: DEBUG on unless set (so no SECRET_KEY is needed
    locally), unbuffered output, and SITE_URL matching the port unless set."""
    env = dict(os.environ if base is None else base)
    env.setdefault("DEBUG", "1")
    env.setdefault("PORT", str(DEFAULT_PORT))
    env.setdefault("SITE_URL", f"http://127.0.0.1:{env['PORT']}")
    env["PYTHONUNBUFFERED"] = "1"
    # runserver's "WARNING: This is a development server" on every start: this is one.
    env.setdefault("DJANGO_RUNSERVER_HIDE_WARNING", "true")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return env


def service_commands(python: Path | str, env: dict[str, str]) -> list[Service]:
    """Web, Celery worker and Celery beat, as the dev run starts them, and the email-ping
    listener when PING_EMAIL_DOMAIN is set."""
    python = str(python)
    port = env.get("PORT", str(DEFAULT_PORT))
    # SQLite takes one writer at a time and the filesystem broker has no server to arbitrate:
    # the embedded setup runs tasks one at a time in the worker process itself.
    embedded = not env.get("DATABASE_URL") or not env.get("REDIS_URL")
    pool = ["--pool=solo"] if embedded else ["--concurrency=2"]
    schedule = var_dir(env) / "celerybeat-schedule"
    # Email pings only when there is a domain to receive them for (see README, "Email pings").
    mail = (
        [
            Service(
                "smtpd",
                [python, "manage.py", "smtpd_pings", "--host", "127.0.0.1"],
                stop_signal=signal.SIGTERM,
            )
        ]
        if env.get("PING_EMAIL_DOMAIN", "").strip()
        else []
    )
    celery = [python, *QUIET_ROOT_WARNING, "-m", "celery", "-A", "config"]
    return [
        # SIGTERM, not SIGINT: runserver has no handler of its own and nothing to save, so the
        # default action ends it at once. SIGINT took 15 s and a kill (issue 14): Python turns
        # it into KeyboardInterrupt only if SIGINT was not ignored when it started (a `dev.py
        # run &` from a script ignores it, and children inherit that), and even then the
        # interpreter's shutdown took seconds on a busy machine.
        Service(
            "web",
            [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            stop_signal=signal.SIGTERM,
        ),
        Service("worker", [*celery, "worker", "-l", "info", *pool]),
        Service(
            "beat",
            [*celery, "beat", "-l", "info", "-s", str(schedule)],
        ),
        *mail,
    ]


def setup_database(python: Path | str, env: dict[str, str]) -> None:
    """Migrate, then create the demo team and login (idempotent); the demo command prints them."""
    manage = [str(python), "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True)
    url = env["SITE_URL"].rstrip("/") + "/"
    subprocess.run([*manage, "demo", "--url", url], cwd=ROOT, env=env, check=True)


def _relay_output(name: str, stream, width: int) -> None:
    """Prefix each line of a service's output with its name, the way Procfile runners do."""
    prefix = f"{name:>{width}} | ".encode()
    out = sys.stdout.buffer
    for line in iter(stream.readline, b""):
        out.write(prefix + line)
        out.flush()
    stream.close()


def start_services(services: list[Service], env: dict[str, str], cwd: Path = ROOT) -> list[Running]:
    """Start every service in its own session: a terminal's Ctrl-C then reaches only the
    supervisor, which forwards one SIGINT to each (Celery takes a second one as "cold shutdown").
    Prints `started <name> pid <pid>` for each."""
    width = max(len(s.name) for s in services)
    started = []
    for service in services:
        proc = subprocess.Popen(
            service.argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        relay = threading.Thread(
            target=_relay_output, args=(service.name, proc.stdout, width), daemon=True
        )
        relay.start()
        print(f"==> started {service.name} pid {proc.pid}", flush=True)
        started.append(Running(service, proc, relay))
    return started


def stop_services(started: list[Running], timeout: float) -> None:
    """Its stop signal to every service still running, then SIGKILL to the process group of
    any that has not exited within `timeout` seconds. Returns once all have exited."""
    for running in started:
        if running.proc.poll() is None:
            running.proc.send_signal(running.service.stop_signal)
    deadline = time.monotonic() + timeout
    for running in started:
        try:
            running.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            name = running.service.name
            print(f"==> {name} did not stop in {timeout:g} s: killing it", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.proc.pid, signal.SIGKILL)
            running.proc.wait()
    for running in started:
        # Let the last lines a service printed reach the terminal.
        running.relay.join(timeout=2)


def supervise(started: list[Running], timeout: float = STOP_TIMEOUT) -> int:
    """Wait until SIGINT/SIGTERM arrives or a service exits, then stop all of them.
    Returns 0 after a requested stop, non-zero when a service died on its own."""
    requested: list[int] = []

    def on_signal(signum, frame):
        requested.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        died = None
        while not requested and died is None:
            died = next((r for r in started if r.proc.poll() is not None), None)
            if died is None:
                time.sleep(0.2)
        if requested:
            print(f"==> {signal.Signals(requested[0]).name}: stopping all services", flush=True)
        else:
            print(
                f"==> {died.service.name} exited with code {died.proc.returncode}: "
                "stopping the others",
                flush=True,
            )
        stop_services(started, timeout)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if requested:
        return 0
    return died.proc.returncode or 1


def serve(python: Path | str, env: dict[str, str]) -> int:
    """Start web, worker and beat and supervise them until they stop."""
    return supervise(start_services(service_commands(python, env), env))


def run(args: list[str]) -> int:
    if args:
        sys.exit(f"run takes no arguments (got {' '.join(args)}); set PORT to change the port.")
    python = bootstrap()
    env = dev_environment()
    setup_database(python, env)
    return serve(python, env)


def test(args: list[str]) -> int:
    python = bootstrap()
    sys.stdout.flush()
    # pytest replaces this process: its exit code is the command's, and Ctrl-C reaches it alone.
    os.chdir(ROOT)
    os.execv(str(python), [str(python), "-m", "pytest", *args])  # noqa: S606
    return 1  # not reached


COMMANDS = {"run": run, "test": test}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
