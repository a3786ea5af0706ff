"""The processes a benchmark starts: gunicorn, a Celery worker, Celery beat, the webhook
receiver, and the Django-side scripts (bench/data.py, live.py, idle.py). Each is started by
bench/run.py and stopped by its own pid (and its own process group, which it leads), never by
name: other people's processes on the machine are left alone.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VAR = BENCH / "var"
VENV_BIN = Path(sys.executable).parent
SECRET_KEY = "bench-only-" + "k" * 40  # used by this benchmark only


def database_url(args, database: str) -> str:
    return f"{args.server}/{database}" + (f"?{args.url_options}" if args.url_options else "")


def django_env(args, database: str, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(args, database),
        REDIS_URL=args.redis,
        SECRET_KEY=SECRET_KEY,
        DEBUG="0",
        CONN_MAX_AGE="600",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TOCSIN_VAR_DIR=str(VAR / "tocsin"),
        PYTHONDONTWRITEBYTECODE="1",
        **extra,
    )
    return env


def run_django(args, database: str, *argv: str, env_extra: dict | None = None) -> str:
    """Run a Django-side script to its end; its stderr passes through (progress lines)."""
    out = subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env=django_env(args, database, **(env_extra or {})),
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return out.stdout


def last_json(out: str) -> dict:
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if not lines:
        raise RuntimeError(f"no JSON line in the output:\n{out[-2000:]}")
    return json.loads(lines[-1])


def wait_listening(port: int, proc: subprocess.Popen, name: str, log: Path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{name} did not listen on {port} within {timeout:.0f} s; see {log}")


class Process:
    """A process we started, leading its own process group (gunicorn and Celery fork workers;
    stopping the group stops those we started and nothing else)."""

    def __init__(self, name: str, cmd: list[str], env: dict, cwd: Path = ROOT):
        self.name = name
        self.log_path = VAR / f"{name}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=self.log, stderr=self.log, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Forked children that outlived their master (a Celery pool process) go with the group.
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


class Server(Process):
    """A gunicorn master serving `app` on `port`."""

    def __init__(self, name: str, app: str, port: int, env: dict, args, chdir: Path):
        self.port = port
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
        super().__init__(f"gunicorn-{name}", cmd, env, cwd=chdir)
        wait_listening(port, self.proc, self.name, self.log_path)
        self.wait_answering(args.workers * 2)

    def wait_answering(self, answers: int, timeout: float = 120.0) -> None:
        """The master listens before its workers have imported the app (seconds on a busy
        machine): a measurement starting then would count the import. Wait for answers (any
        status: a ping to a token no check has is a 404) to requests of our own."""
        url = f"http://127.0.0.1:{self.port}/ping/00000000-0000-4000-8000-000000000000"
        deadline = time.monotonic() + timeout
        while answers and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=timeout):
                    pass
            except urllib.error.HTTPError:
                pass  # an answer all the same
            except OSError:
                time.sleep(0.2)
                continue
            answers -= 1
        if answers:
            sys.exit(f"{self.name} did not answer within {timeout:.0f} s; see {self.log_path}")


class Receiver(Process):
    """bench/receiver.py: records when each webhook arrives, one JSON line each."""

    def __init__(self, port: int, log: Path):
        self.port, self.records = port, log
        log.write_text("")
        cmd = [sys.executable, str(BENCH / "receiver.py"), "--port", str(port), "--log", str(log)]
        super().__init__("receiver", cmd, dict(os.environ))
        wait_listening(port, self.proc, self.name, self.log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextmanager
def tocsin_stack(args, database: str, *, env_extra: dict, label: str):
    """gunicorn, a Celery worker consuming both queues (sweeps and deliveries) and Celery beat,
    as a deployment runs them, on `database`; stopped when the block ends."""
    env = django_env(args, database, **env_extra)
    schedule = VAR / f"celerybeat-{label}"
    for leftover in VAR.glob(f"celerybeat-{label}*"):
        leftover.unlink()  # a fresh beat: no schedule state carried over from another run
    started: list[Process] = []
    try:
        started.append(Server(f"{label}", args.tocsin_app, args.ports[0], env, args, ROOT))
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        started.append(
            Process(
                f"worker-{label}",
                [*celery, "worker", "-l", "warning", "-Q", "celery,deliveries",
                 "--concurrency", str(args.celery_concurrency), "-n", f"bench-{label}@%h"],
                env,
            )
        )  # fmt: skip
        started.append(
            Process(f"beat-{label}", [*celery, "beat", "-l", "warning", "-s", str(schedule)], env)
        )
        yield started
        for process in started:
            if process.proc.poll() is not None:
                raise RuntimeError(f"{process.name} died during the run; see {process.log_path}")
    finally:
        for process in reversed(started):
            process.stop()
