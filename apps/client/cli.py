"""The `tocsin` command:

    tocsin run --url <ping-url> [--timeout S] [--progress-every S] -- <command> [args...]
    tocsin ping <ping-url> [--start | --fail | --log | --exit N] [--body-file F]

`run` exits with the command's own exit status whatever happens to the pings; `ping` exits 0
when Tocsin accepted the ping, 1 when it refused it or could not be reached, and 2 on a usage
error.
"""

import argparse
import os
import sys
from collections.abc import Sequence

from .pinger import DEFAULT_BUDGET, BadPingUrl, check_ping_url, ping_url, send_ping
from .reporter import RunReporter
from .runner import Completed, run_command

# Above this a --body-file is cut to its last bytes: Tocsin stores at most PING_BODY_LIMIT.
BODY_FILE_LIMIT = 100 * 1024


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 10**7:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _exit_status(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 255:
        raise argparse.ArgumentTypeError(f"exit status must be 0..255, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tocsin", description="Report a job's runs to Tocsin (https://tocsin.example)."
    )
    commands = parser.add_subparsers(dest="subcommand", required=True)

    run = commands.add_parser(
        "run",
        help="run a command and report its start, exit status and output",
        description="Run a command and report its start, exit status, duration and the last "
        "10 KB of its output. Exits with the command's exit status, even when Tocsin is "
        "unreachable.",
    )
    run.add_argument(
        "--url",
        default=os.environ.get("TOCSIN_URL", ""),
        help="the check's ping URL (default: $TOCSIN_URL)",
    )
    run.add_argument("--timeout", type=_positive_seconds, help="stop the command after S seconds")
    run.add_argument(
        "--progress-every",
        type=_positive_seconds,
        metavar="S",
        help="send a /progress heartbeat every S seconds while the command runs",
    )
    _add_common(run)
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its args")

    ping = commands.add_parser("ping", help="send one ping")
    ping.add_argument("url", help="the check's ping URL")
    kind = ping.add_mutually_exclusive_group()
    kind.add_argument("--start", action="store_const", const="start", dest="suffix")
    kind.add_argument("--fail", action="store_const", const="fail", dest="suffix")
    kind.add_argument("--log", action="store_const", const="log", dest="suffix")
    kind.add_argument("--progress", action="store_const", const="progress", dest="suffix")
    kind.add_argument("--exit", type=_exit_status, metavar="N", dest="exit_status")
    ping.add_argument("--body-file", metavar="F", help="send this file as the body ('-': stdin)")
    ping.add_argument("--rid", help="a run id (UUID) to pair a start with its finish")
    _add_common(ping)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ping-timeout",
        type=_positive_seconds,
        default=DEFAULT_BUDGET,
        metavar="S",
        help=f"give up on one ping after S seconds, retries included (default {DEFAULT_BUDGET:g})",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="do not print ping problems to stderr"
    )


def _warner(quiet: bool):
    def warn(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return warn


def run(args) -> int:
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not argv:
        print("tocsin run: no command given (tocsin run --url URL -- command ...)", file=sys.stderr)
        return 2
    warn = _warner(args.quiet)
    reporter = None
    try:
        reporter = RunReporter(check_ping_url(args.url), budget=args.ping_timeout, warn=warn)
    except BadPingUrl as error:
        # A typo in the URL must not cost the job its run: run it unmonitored, loudly.
        print(f"tocsin: {error}; running the command without reporting", file=sys.stderr)
    if reporter:
        reporter.start()
    completed = run_command(
        argv,
        timeout=args.timeout,
        progress_every=args.progress_every,
        on_progress=reporter.progress if reporter else None,
    )
    if reporter:
        reporter.finish(str(completed.exit_status), finish_body(completed))
    return completed.exit_status


def finish_body(completed: Completed) -> bytes:
    """The output's tail, then one line saying how the command ended, for whoever reads the
    alert (Tocsin quotes the body's last lines)."""
    tail = completed.output_tail
    separator = b"" if not tail or tail.endswith(b"\n") else b"\n"
    line = f"[tocsin] {completed.summary} after {completed.duration:.3f} s\n"
    return tail + separator + line.encode()


def _read_body(name: str | None) -> bytes:
    if name is None:
        return b""
    if name == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(name, "rb") as stream:
            data = stream.read()
    return data[-BODY_FILE_LIMIT:]


def ping(args) -> int:
    try:
        url = check_ping_url(args.url)
        body = _read_body(args.body_file)
    except (BadPingUrl, OSError) as error:
        print(f"tocsin ping: {error}", file=sys.stderr)
        return 2
    suffix = args.suffix or ("" if args.exit_status is None else str(args.exit_status))
    outcome = send_ping(ping_url(url, suffix, run_id=args.rid), body, budget=args.ping_timeout)
    if not outcome.delivered:
        _warner(args.quiet)(
            f"tocsin ping: not delivered after {outcome.attempts} attempt(s): {outcome.detail}"
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.subcommand == "run":
        return run(args)
    return ping(args)
