"""The dev run's supervisor (scripts/dev.py), with real processes.

The full `dev.py run` also creates a venv and installs packages, which is too slow for the suite.
These tests start the same web, worker and beat commands through dev.py's own functions, in a
child Python process that plays the part of `dev.py run`, against a temporary TOCSIN_VAR_DIR
with SQLite and the filesystem broker.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import dev  # noqa: E402  (scripts/ is not a package)

if os.name != "posix":  # pragma: no cover
    pytest.skip("the supervisor relies on POSIX signals and sessions", allow_module_level=True)

# The child process: what `dev.py run` does after its venv bootstrap.
SUPERVISOR = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import dev
    env = json.loads(sys.argv[2])
    if sys.argv[3] == "serve":
        dev.setup_database(sys.executable, env)
        sys.exit(dev.serve(sys.executable, env))
    services = [dev.Service(*service) for service in json.loads(sys.argv[3])]
    sys.exit(dev.supervise(dev.start_services(services, env), timeout=2))
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(var_dir: Path, port: int) -> dict[str, str]:
    """The dev run's environment with no servers: SQLite and the filesystem broker."""
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env = dev.dev_environment(base)
    env.update(
        TOCSIN_VAR_DIR=str(var_dir),
        PORT=str(port),
        SITE_URL=f"http://127.0.0.1:{port}",
        SWEEP_INTERVAL="1",
    )
    return env


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_supervisor(env, mode, log_path, *, sigint_ignored=False):
    """`sigint_ignored`: started the way a shell starts a background job (`dev.py run &`),
    with SIGINT ignored, which its children inherit."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed by the caller through the process
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(ROOT / "scripts"), json.dumps(env), mode],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
    log.close()
    return proc


def child_pids(log_path: Path, count: int, deadline: float) -> dict[str, int]:
    """Read `==> started <name> pid <pid>` lines from the supervisor's output."""
    while time.monotonic() < deadline:
        pids = {}
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("==> started "):
                _, _, name, _, pid = line.split()
                pids[name] = int(pid)
        if len(pids) == count:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"children never started:\n{log_path.read_text(errors='replace')}")


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead; it only waits for its (gone) parent to reap it.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def wait_for_exit(proc, log_path, timeout):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(
            f"supervisor still running after {timeout} s:\n{log_path.read_text()}"
        ) from None


def get_healthz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_service_commands_start_web_worker_and_beat_with_the_schedule_under_var(tmp_path):
    env = embedded_env(tmp_path, 8123)
    services = {s.name: s.argv for s in dev.service_commands("/venv/bin/python", env)}
    assert list(services) == ["web", "worker", "beat"]
    assert services["web"][1:] == ["manage.py", "runserver", "127.0.0.1:8123", "--noreload"]
    stop = {s.name: s.stop_signal for s in dev.service_commands("/venv/bin/python", env)}
    assert stop == {"web": signal.SIGTERM, "worker": signal.SIGINT, "beat": signal.SIGINT}
    assert "--pool=solo" in services["worker"]
    assert services["beat"][-2:] == ["-s", str(tmp_path / "celerybeat-schedule")]


def test_worker_uses_a_process_pool_only_with_postgres_and_redis(tmp_path):
    env = embedded_env(tmp_path, 8123)
    env.update(DATABASE_URL="postgres://db/tocsin", REDIS_URL="redis://cache:6379/0")
    worker = next(s for s in dev.service_commands("python", env) if s.name == "worker")
    assert "--pool=solo" not in worker.argv


def test_dev_environment_turns_debug_on_only_when_unset():
    assert dev.dev_environment({})["DEBUG"] == "1"
    assert dev.dev_environment({"DEBUG": "0"})["DEBUG"] == "0"
    assert dev.dev_environment({"PORT": "9000"})["SITE_URL"] == "http://127.0.0.1:9000"


def test_dev_run_serves_healthz_after_a_sweep_and_sigint_stops_all_three(tmp_path):
    port = free_port()
    env = embedded_env(tmp_path / "var", port)
    log_path = tmp_path / "run.log"
    proc = start_supervisor(env, "serve", log_path)
    try:
        # Migrating a fresh SQLite database comes first: minutes on a busy machine.
        pids = child_pids(log_path, 3, deadline=time.monotonic() + 300)
        deadline = time.monotonic() + 90
        status, body = 0, {}
        while time.monotonic() < deadline and status != 200:
            with contextlib.suppress(OSError):  # web not listening yet
                status, body = get_healthz(port)
            time.sleep(0.3)
        assert status == 200, f"/healthz never answered 200 ({body}):\n{log_path.read_text()}"
        # 200 means the database answered and a sweep ran: beat sent it, the worker ran it.
        assert body["sweeper"]["ok"] is True
        assert body["broker"]["ok"] is True
        assert "Log in as demo / tocsin-demo" in log_path.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        code = wait_for_exit(proc, log_path, timeout=25)
    assert code == 0, log_path.read_text()
    assert [name for name, pid in pids.items() if is_running(pid)] == []
    log = log_path.read_text()
    assert "SIGINT: stopping all services" in log
    assert "did not stop" not in log  # each stopped on its signal, none had to be killed
    # Nothing a newcomer cannot act on (issue 14): the filesystem broker names its host.
    assert "No hostname was supplied" not in log


def _sleeper(seconds=60):
    return [sys.executable, "-c", f"import time; time.sleep({seconds})"]


def test_when_one_service_dies_the_others_are_stopped_and_the_exit_code_is_non_zero(tmp_path):
    services = [
        ("web", _sleeper()),
        ("worker", _sleeper()),
        ("beat", [sys.executable, "-c", "import time, sys; time.sleep(1); sys.exit(3)"]),
    ]
    log_path = tmp_path / "run.log"
    proc = start_supervisor(dict(os.environ), json.dumps(services), log_path)
    pids = child_pids(log_path, 3, deadline=time.monotonic() + 60)
    code = wait_for_exit(proc, log_path, timeout=20)
    assert code == 3
    assert "beat exited with code 3: stopping the others" in log_path.read_text()
    assert [name for name, pid in pids.items() if is_running(pid)] == []


def test_sigterm_stops_all_services_and_exits_zero(tmp_path):
    services = [("web", _sleeper()), ("worker", _sleeper())]
    log_path = tmp_path / "run.log"
    proc = start_supervisor(dict(os.environ), json.dumps(services), log_path)
    pids = child_pids(log_path, 2, deadline=time.monotonic() + 60)
    proc.send_signal(signal.SIGTERM)
    assert wait_for_exit(proc, log_path, timeout=20) == 0
    assert [name for name, pid in pids.items() if is_running(pid)] == []


def test_a_service_that_ignores_sigint_is_killed_after_the_timeout(tmp_path):
    stubborn = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    services = [("web", [sys.executable, "-c", stubborn])]
    log_path = tmp_path / "run.log"
    proc = start_supervisor(dict(os.environ), json.dumps(services), log_path)
    pids = child_pids(log_path, 1, deadline=time.monotonic() + 60)
    # Only once it ignores SIGINT (it says so): earlier, the SIGINT would simply kill it.
    deadline = time.monotonic() + 60
    while "web | ready" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "web | ready" in log_path.read_text(), log_path.read_text()
    proc.send_signal(signal.SIGINT)
    assert wait_for_exit(proc, log_path, timeout=20) == 0
    assert "web did not stop in 2 s: killing it" in log_path.read_text()
    assert not is_running(pids["web"])


def test_runserver_stops_on_its_signal_even_when_sigint_is_ignored(tmp_path):
    """Issue 14: web took 15 s and a SIGKILL to stop. runserver stops on SIGTERM's default
    action at once, whatever the terminal or the shell did to SIGINT."""
    port = free_port()
    env = embedded_env(tmp_path / "var", port)
    web = dev.service_commands(sys.executable, env)[0]
    services = [(web.name, web.argv, web.stop_signal)]
    log_path = tmp_path / "run.log"
    proc = start_supervisor(env, json.dumps(services), log_path, sigint_ignored=True)
    pids = child_pids(log_path, 1, deadline=time.monotonic() + 30)
    deadline = time.monotonic() + 60
    while "Quit the server" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Quit the server" in log_path.read_text(), log_path.read_text()
    proc.send_signal(signal.SIGINT)
    assert wait_for_exit(proc, log_path, timeout=20) == 0
    log = log_path.read_text()
    assert "SIGINT: stopping all services" in log
    assert "web did not stop in 2 s" not in log, log
    assert not is_running(pids["web"])


def test_the_email_ping_listener_starts_only_with_a_domain(tmp_path):
    env = embedded_env(tmp_path, 8123)
    assert "smtpd" not in {s.name for s in dev.service_commands("python", env)}
    env["PING_EMAIL_DOMAIN"] = "pings.example"
    smtpd = next(s for s in dev.service_commands("python", env) if s.name == "smtpd")
    assert smtpd.argv[1:] == ["manage.py", "smtpd_pings", "--host", "127.0.0.1"]
    assert smtpd.stop_signal == signal.SIGTERM


SERVICE_PREFIXES = ("==> ", "   web | ", "worker | ", "  beat | ")


@pytest.mark.slow
def test_dev_py_run_answers_then_stops_within_2_s_of_sigterm_without_warnings(tmp_path):
    """Issue 14: the real `python3 scripts/dev.py run` (its venv is this one, installed), in the
    embedded mode with a var dir and a port of its own. Its start-up shows no warning a
    newcomer cannot act on (Celery's superuser and broker warnings, runserver's "development
    server" one), and SIGTERM stops web, worker and beat within 2 s."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TOCSIN_VAR_DIR=str(tmp_path / "var"), PORT=str(port), SWEEP_INTERVAL="1")
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "dev.py"), "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        pids = child_pids(log_path, 3, deadline=time.monotonic() + 300)
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline and status != 200:
            with contextlib.suppress(OSError):
                status, _ = get_healthz(port)
            time.sleep(0.3)
        assert status == 200, log_path.read_text(errors="replace")
        # The worker has run a sweep: whatever it prints at start-up has been printed.
        started = log_path.read_text(errors="replace")
        proc.send_signal(signal.SIGTERM)
        signalled_at = time.monotonic()
        code = wait_for_exit(proc, log_path, timeout=20)
        took = time.monotonic() - signalled_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = log_path.read_text(errors="replace")
    assert code == 0, log
    assert took < 2.0, f"took {took:.1f} s to stop:\n{log}"
    assert [name for name, pid in pids.items() if is_running(pid)] == []
    # What web, worker and beat print (each line prefixed with its name) and dev.py's own
    # lines; pip's output, when pyproject.toml changed since the last install, belongs to
    # the machine's pip configuration.
    services = [line for line in started.splitlines() if line.startswith(SERVICE_PREFIXES)]
    assert any(line.startswith("worker | ") for line in services), started
    warnings = [line for line in services if "warning" in line.lower()]
    assert warnings == [], "\n".join(warnings)
