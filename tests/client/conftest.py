"""Helpers for the client tests: the `tocsin` command as a real subprocess, a check's pings as
Tocsin recorded them, ports where Tocsin is unreachable, and a sweep right after the pings."""

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Max

from apps.checks.models import Check, Ping
from apps.checks.sweeper import sweep_due_checks

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def tocsin_argv(*args: str) -> list[str]:
    # `python -m apps.client` from this checkout: the code under test, whatever checkout the
    # shared virtualenv's console script points at (test_console_script covers the script).
    return [PYTHON, "-m", "apps.client", *args]


def run_tocsin(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        tocsin_argv(*args), cwd=ROOT, capture_output=True, timeout=timeout, check=False, **kwargs
    )


def python_command(code: str) -> list[str]:
    return [PYTHON, "-c", code]


def pings_of(check: Check) -> list[Ping]:
    """The check's pings in arrival order."""
    return list(Ping.objects.filter(owner=check).order_by("n"))


def sweep_after_pings(check: Check):
    """Sweep once, a second after the check's last ping (database clock), as the beat would."""
    last = Ping.objects.filter(owner=check).aggregate(last=Max("received_at"))["last"]
    return sweep_due_checks(now=last + timedelta(seconds=1))


@pytest.fixture
def closed_port_url() -> str:
    """A ping URL on a local port where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ping/6f1c1d2e-0000-4000-8000-000000000000"


@pytest.fixture
def blackhole_url() -> Iterator[str]:
    """A ping URL on a socket that listens but never accepts or answers: connections succeed
    (the kernel completes them from the backlog) and every request waits for a reply that never
    comes, like a hung proxy or a firewall that drops packets."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        port = sock.getsockname()[1]
        yield f"http://127.0.0.1:{port}/ping/6f1c1d2e-0000-4000-8000-000000000000"
