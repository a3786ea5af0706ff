"""`tocsin run` and `tocsin ping` as real subprocesses against the production WSGI app on a real
socket (tests/live.py), running real commands. What Tocsin recorded is read back from the
database: Ping rows as they arrived, then Runs, the check's status and the incident after a
sweep."""

import os
import pty
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest

from apps.checks.models import Check, Ping, Run
from apps.incidents.models import Incident
from tests.factories import CheckFactory

from .conftest import (
    PYTHON,
    ROOT,
    pings_of,
    python_command,
    run_tocsin,
    sweep_after_pings,
    tocsin_argv,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_check(team):
    return CheckFactory(team=team, name="nightly-backup", slug="nightly-backup")


@pytest.fixture
def url(live_app_url, live_check) -> str:
    return f"{live_app_url}/ping/{live_check.ping_token}"


def test_successful_command_reports_start_and_success_with_one_run_id(url, live_check):
    result = run_tocsin("run", "--url", url, "--", *python_command("print('backed up 12 files')"))

    assert result.returncode == 0
    assert result.stdout == b"backed up 12 files\n"
    assert result.stderr == b""
    start, finish = pings_of(live_check)
    assert (start.kind, finish.kind) == ("start", "success")
    assert finish.exit_status == 0
    assert start.run_id == finish.run_id is not None
    assert start.method == finish.method == "POST"
    assert finish.user_agent.startswith("tocsin-cli/")
    assert finish.sent_at is not None  # X-Tocsin-Sent-At: the job host's clock
    body = bytes(finish.body)
    assert body.startswith(b"backed up 12 files\n[tocsin] exited with status 0 after ")
    assert body.endswith(b" s\n")

    sweep_after_pings(live_check)
    live_check.refresh_from_db()
    assert live_check.status == Check.Status.UP
    (run,) = Run.objects.filter(owner=live_check)
    assert run.run_id == start.run_id
    assert run.outcome == Run.Outcome.SUCCEEDED
    assert run.exit_status == 0


def test_failing_command_is_recorded_with_exit_status_3_and_output_tail(url, live_check):
    # stderr's line comes in two unbuffered writes with stdout's lines in between: the tail
    # still shows it as one line (issue 18: it read "disk step 0").
    script = (
        "import os, sys\n"
        "os.write(2, b'disk ')\n"
        "for i in range(5): print('step', i, flush=True)\n"
        "os.write(2, b'full\\n')\n"
        "sys.exit(3)\n"
    )

    result = run_tocsin("run", "--url", url, "--", *python_command(script))

    assert result.returncode == 3
    assert result.stdout == b"".join(b"step %d\n" % i for i in range(5))
    assert result.stderr == b"disk full\n"
    start, finish = pings_of(live_check)
    assert (start.kind, finish.kind) == ("start", "fail")
    assert finish.exit_status == 3
    assert finish.run_id == start.run_id
    output, trailer = bytes(finish.body).rsplit(b"\n[tocsin] ", 1)
    lines = output.split(b"\n")
    # Whole lines only; where stderr's line lands among stdout's depends on the pumps.
    assert sorted(lines) == [b"disk full", *(b"step %d" % i for i in range(5))]
    assert [line for line in lines if line.startswith(b"step")] == [
        b"step %d" % i for i in range(5)
    ]
    assert trailer.startswith(b"exited with status 3 after ")
    assert trailer.endswith(b" s\n")

    sweep_after_pings(live_check)
    live_check.refresh_from_db()
    assert live_check.status == Check.Status.DOWN
    incident = Incident.objects.get(owner=live_check)
    assert incident.kind == Incident.Kind.FAILURE_SIGNAL
    assert incident.state == Incident.State.TRIGGERED
    assert incident.details["exit_status"] == 3
    assert incident.details["run_id"] == str(start.run_id)
    assert "disk full" in incident.details["body_tail"]
    assert "[tocsin] exited with status 3" in incident.details["body_tail"]


def test_output_passes_through_byte_for_byte_and_the_body_is_its_last_10_kb(url, live_check):
    # Every byte value, no trailing newline, more than the 10 KB tail.
    script = (
        "import sys\n"
        "sys.stdout.buffer.write(bytes(range(256)) * 200)\n"
        "sys.stdout.buffer.write(b'\\xff\\xfe the end')\n"
    )

    result = run_tocsin("run", "--url", url, "--", *python_command(script))

    expected = bytes(range(256)) * 200 + b"\xff\xfe the end"
    assert result.returncode == 0
    assert result.stdout == expected
    assert result.stderr == b""
    finish = pings_of(live_check)[-1]
    body = bytes(finish.body)
    output, trailer = body.rsplit(b"\n[tocsin] ", 1)
    assert output == expected[-10 * 1024 :]
    assert trailer.startswith(b"exited with status 0 after ")
    assert finish.body_truncated is False


def _start_wrapper(*args: str) -> subprocess.Popen:
    wrapper = subprocess.Popen(
        tocsin_argv(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # The command prints "ready" once it runs: only then is there something to signal.
    assert wrapper.stdout.readline() == b"ready\n"
    return wrapper


@pytest.mark.parametrize(
    ("signum", "expected_status"),
    [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 128 + 2)],
    ids=["SIGTERM", "SIGINT"],
)
def test_signal_to_the_wrapper_reaches_the_command_and_its_death_is_reported(
    url, live_check, signum, expected_status
):
    sleeper = "import time; print('ready', flush=True); time.sleep(60)"
    wrapper = _start_wrapper("run", "--url", url, "--", *python_command(sleeper))

    wrapper.send_signal(signum)
    wrapper.communicate(timeout=30)

    assert wrapper.returncode == expected_status
    start, finish = pings_of(live_check)
    assert finish.kind == "fail"
    assert finish.exit_status == expected_status
    assert finish.run_id == start.run_id
    name = signal.Signals(signum).name
    assert f"[tocsin] killed by {name} after the wrapper received {name}".encode() in bytes(
        finish.body
    )


def test_command_handling_sigterm_receives_it_and_its_own_exit_status_is_reported(url, live_check):
    graceful = (
        "import signal, sys, time\n"
        "def stop(signum, frame):\n"
        "    print('cleaning up after SIGTERM', flush=True)\n"
        "    sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    wrapper = _start_wrapper("run", "--url", url, "--", *python_command(graceful))

    wrapper.send_signal(signal.SIGTERM)
    stdout, _ = wrapper.communicate(timeout=30)

    assert wrapper.returncode == 7
    assert stdout == b"cleaning up after SIGTERM\n"
    finish = pings_of(live_check)[-1]
    assert finish.exit_status == 7
    body = bytes(finish.body)
    assert b"cleaning up after SIGTERM\n" in body
    assert b"exited with status 7 after the wrapper received SIGTERM" in body


def test_signal_reaches_every_process_of_a_shell_pipeline(url, live_check, tmp_path):
    # The command runs in its own process group and the signal goes to the whole group: the
    # shell's child (here a second python) hears it too, not only the shell.
    marker = tmp_path / "child-heard-sigterm"
    child = (
        "import signal, sys, time\n"
        "def stop(signum, frame):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    script = tmp_path / "child.py"
    script.write_text(child)
    wrapper = _start_wrapper("run", "--url", url, "--", "sh", "-c", f"{PYTHON} {script}; exit 9")

    wrapper.send_signal(signal.SIGTERM)
    wrapper.communicate(timeout=30)

    # sh dies of the SIGTERM at once and the wrapper reports that; the child (which nobody
    # waits for) runs its handler whenever it is next scheduled, which on a busy machine can be
    # after the wrapper is gone: wait for what it writes, not for the wrapper.
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    assert wrapper.returncode == 128 + 15  # sh itself died of the SIGTERM
    assert pings_of(live_check)[-1].exit_status == 128 + 15


def test_timeout_stops_the_command_and_is_reported_as_124(url, live_check):
    # sh says "working" within milliseconds of starting (a Python child could still be
    # starting when the second is up on a busy machine), then sleeps far beyond the timeout.
    started = time.monotonic()

    result = run_tocsin(
        "run", "--url", url, "--timeout", "1", "--", "sh", "-c", "echo working; exec sleep 600"
    )

    assert result.returncode == 124
    assert time.monotonic() - started < 60
    assert result.stdout == b"working\n"
    finish = pings_of(live_check)[-1]
    assert (finish.kind, finish.exit_status) == ("fail", 124)
    assert b"working\n" in bytes(finish.body)
    assert b"[tocsin] timed out after 1 s and was stopped" in bytes(finish.body)


def test_progress_heartbeats_are_sent_while_the_command_runs(url, live_check, tmp_path):
    # The command runs until Tocsin has recorded two heartbeats (the test then creates the
    # marker it waits for), however slowly a busy machine sends them.
    marker = tmp_path / "two-heartbeats-recorded"
    waiter = f"import os, time\nwhile not os.path.exists({str(marker)!r}): time.sleep(0.05)\n"
    wrapper = subprocess.Popen(
        tocsin_argv("run", "--url", url, "--progress-every", "0.3", "--", PYTHON, "-c", waiter),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        heartbeats = Ping.objects.filter(owner=live_check, kind="progress")
        deadline = time.monotonic() + 60
        while heartbeats.count() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        marker.touch()
    finally:
        wrapper.communicate(timeout=60)

    assert wrapper.returncode == 0
    pings = pings_of(live_check)
    kinds = [p.kind for p in pings]
    assert kinds[0] == "start"
    assert kinds[-1] == "success"
    assert kinds.count("progress") >= 2
    assert {p.run_id for p in pings} == {pings[0].run_id}


def test_command_not_found_is_reported_as_127(url, live_check):
    result = run_tocsin("run", "--url", url, "--", "/nonexistent/backup-tool", "--all")

    assert result.returncode == 127
    assert b"command not found: /nonexistent/backup-tool" in result.stderr
    finish = pings_of(live_check)[-1]
    assert (finish.kind, finish.exit_status) == ("fail", 127)
    assert b"command not found" in bytes(finish.body)


def test_options_after_the_double_dash_belong_to_the_command(url, live_check):
    result = run_tocsin(
        "run", "--url", url, "--", *python_command("import sys; print(sys.argv[1:])"), "--timeout"
    )

    assert result.returncode == 0
    assert result.stdout == b"['--timeout']\n"


def test_unknown_check_does_not_change_the_exit_status(live_app_url, db):
    url = f"{live_app_url}/ping/{uuid.uuid4()}"

    result = run_tocsin("run", "--url", url, "--", *python_command("raise SystemExit(5)"))

    assert result.returncode == 5
    assert b"could not send the /start ping after 1 attempt(s): 404" in result.stderr


def test_malformed_url_runs_the_command_unmonitored(db):
    result = run_tocsin("run", "--url", "ftp://x/ping/y", "--", *python_command("print('ran')"))

    assert result.returncode == 0
    assert result.stdout == b"ran\n"
    assert b"running the command without reporting" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--url", "http://x/ping/y"], b"no command given"),
        (["run", "--url", "http://x/ping/y", "--timeout", "soon", "--", "true"], b"--timeout"),
        (["run", "--url", "http://x/ping/y", "--timeout", "-1", "--", "true"], b"--timeout"),
        (["ping", "http://x/ping/y", "--exit", "256"], b"exit status must be 0..255"),
        (["ping", "http://x/ping/y", "--fail", "--start"], b"not allowed with"),
        (["ping", "gopher://x/ping/y"], b"must start with http"),
    ],
    ids=[
        "no-command",
        "timeout-not-a-number",
        "negative-timeout",
        "exit-256",
        "two-kinds",
        "scheme",
    ],
)
def test_usage_errors_exit_2_with_a_message(args, message):
    result = run_tocsin(*args)

    assert result.returncode == 2
    assert message in result.stderr


# Unreachable Tocsin: the job runs, keeps its exit status and its output, and the wrapper
# gives up on the pings within its budget. A blackholed Tocsin would hold the wrapper forever
# otherwise, so any return shows the budget at work; the bound allows the start and finish
# budgets in full plus interpreter start-ups on a busy machine.
PING_BUDGET = 1.0
BOUND = 2 * PING_BUDGET + 10


@pytest.mark.parametrize("unreachable", ["closed_port_url", "blackhole_url"])
def test_unreachable_tocsin_keeps_the_exit_status_and_gives_up_in_bounded_time(
    request, unreachable
):
    url = request.getfixturevalue(unreachable)
    script = "import sys; print('still ran'); sys.exit(3)"
    started = time.monotonic()

    result = run_tocsin(
        "run", "--url", url, "--ping-timeout", str(PING_BUDGET), "--", *python_command(script)
    )

    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert result.stdout == b"still ran\n"
    assert elapsed < BOUND
    assert b"could not send the /start ping" in result.stderr
    assert b"could not send the /3 ping" in result.stderr


def test_blackholed_tocsin_with_the_default_budget_still_gives_up(blackhole_url):
    started = time.monotonic()

    result = run_tocsin("run", "--url", blackhole_url, "-q", "--", "true")

    assert result.returncode == 0
    assert result.stderr == b""  # --quiet
    assert time.monotonic() - started < 2 * 10 + 10


def test_unreachable_tocsin_ping_command_exits_1_in_bounded_time(blackhole_url):
    started = time.monotonic()

    result = run_tocsin("ping", blackhole_url, "--ping-timeout", "1")

    assert result.returncode == 1
    assert time.monotonic() - started < 1 + 10
    assert b"not delivered" in result.stderr


@pytest.mark.parametrize(
    ("flags", "kind", "exit_status"),
    [
        ([], "success", None),
        (["--start"], "start", None),
        (["--fail"], "fail", None),
        (["--log"], "log", None),
        (["--progress"], "progress", None),
        (["--exit", "0"], "success", 0),
        (["--exit", "42"], "fail", 42),
    ],
    ids=["success", "start", "fail", "log", "progress", "exit-0", "exit-42"],
)
def test_ping_command_sends_each_kind(url, live_check, flags, kind, exit_status):
    result = run_tocsin("ping", url, *flags)

    assert result.returncode == 0, result.stderr
    (ping,) = pings_of(live_check)
    assert (ping.kind, ping.exit_status) == (kind, exit_status)


def test_ping_command_sends_a_body_file_and_a_run_id(url, live_check, tmp_path):
    log = tmp_path / "backup.log"
    log.write_bytes(b"rotated 3 files\n\x00\xff binary too\n")
    rid = str(uuid.uuid4())

    result = run_tocsin("ping", url, "--log", "--body-file", str(log), "--rid", rid)

    assert result.returncode == 0
    (ping,) = pings_of(live_check)
    assert bytes(ping.body) == b"rotated 3 files\n\x00\xff binary too\n"
    assert str(ping.run_id) == rid


def test_ping_command_reads_the_body_from_stdin(url, live_check):
    result = run_tocsin("ping", url, "--fail", "--body-file", "-", input=b"it broke\n")

    assert result.returncode == 0
    (ping,) = pings_of(live_check)
    assert (ping.kind, bytes(ping.body)) == ("fail", b"it broke\n")


def test_ping_command_reports_refused_pings(live_app_url, url, live_check):
    unknown = run_tocsin("ping", f"{live_app_url}/ping/{uuid.uuid4()}")
    bad_rid = run_tocsin("ping", url, "--rid", "not-a-uuid")
    missing_file = run_tocsin("ping", url, "--body-file", "/nonexistent/log")

    assert unknown.returncode == 1
    assert b"404 not found" in unknown.stderr
    assert bad_rid.returncode == 1
    assert b"400 invalid rid" in bad_rid.stderr
    assert missing_file.returncode == 2
    assert pings_of(live_check) == []


def test_ping_key_and_slug_urls_work_too(live_app_url, live_check):
    url = f"{live_app_url}/ping/{live_check.team.ping_key}/{live_check.slug}"

    result = run_tocsin("run", "--url", url + "/", "--", "true")

    assert result.returncode == 0
    assert [p.kind for p in pings_of(live_check)] == ["start", "success"]


def test_url_can_come_from_the_environment(url, live_check):
    result = run_tocsin("run", "--", "true", env={**os.environ, "TOCSIN_URL": url})

    assert result.returncode == 0
    assert [p.kind for p in pings_of(live_check)] == ["start", "success"]


def test_console_script_is_installed_and_runs_the_wrapper(url, live_check):
    script = os.path.join(os.path.dirname(sys.executable), "tocsin")
    assert os.access(script, os.X_OK), "pip install -e . creates the tocsin console script"

    result = subprocess.run(
        [script, "run", "--url", url, "--", "true"], capture_output=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert [p.kind for p in pings_of(live_check)] == ["start", "success"]


def _run_in_terminal(args: list[str], keystrokes: list[tuple[bytes, bytes]], timeout=30):
    """Run the wrapper as the foreground job of a new pseudo-terminal, as in an interactive
    shell; for each (prompt, keys), wait for `prompt` on the terminal and type `keys`.
    Returns (exit status, everything the terminal showed)."""
    pid, master = pty.fork()
    if pid == 0:  # the child: becomes the wrapper
        os.chdir(ROOT)
        os.execv(PYTHON, tocsin_argv(*args))  # noqa: S606
    shown, deadline = b"", time.monotonic() + timeout
    pending = list(keystrokes)
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0] in shown:
                os.write(master, pending.pop(0)[1])
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the terminal's last user is gone
                    break
                if not data:
                    break
                shown += data
        else:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return os.waitstatus_to_exitcode(status), shown


def test_interactive_command_can_read_the_terminal(url, live_check):
    ask = "print(input('passphrase? ')[::-1])"

    status, shown = _run_in_terminal(
        ["run", "--url", url, "--", *python_command(ask)], [(b"passphrase? ", b"secret\n")]
    )

    assert status == 0, shown
    assert b"terces" in shown
    assert [p.kind for p in pings_of(live_check)] == ["start", "success"]


def test_ctrl_c_in_the_terminal_reaches_the_command_once(url, live_check):
    sleeper = "import time; print('ready', flush=True); time.sleep(60)"

    status, shown = _run_in_terminal(
        ["run", "--url", url, "--", *python_command(sleeper)], [(b"ready", b"\x03")]
    )

    assert status == 130, shown
    finish = pings_of(live_check)[-1]
    assert finish.exit_status == 130
    # The terminal signalled the command's group directly; the wrapper was not involved.
    assert b"[tocsin] killed by SIGINT after " in bytes(finish.body)
    assert b"the wrapper received" not in bytes(finish.body)
