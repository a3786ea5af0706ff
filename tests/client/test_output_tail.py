"""The output tail that `tocsin run` sends with its finish ping: stdout and stderr merged by
whole lines, while the terminal gets every byte at once.

The rule is tested on its own first (what goes in, in which order, and what the tail says),
then with a real child process that writes a line in two parts while the other stream writes
in between. That child and this test take turns through a FIFO, and the test moves on only
once it has seen each part pass through, so the interleaving that mangled the alerts
(issue 18) happens on every round instead of now and then."""

import os
import select
import threading
import time

import pytest

from apps.client.runner import OutputTail, run_command

from .conftest import python_command

OUT, ERR, CLOSE = "stdout", "stderr", "close"


def _feed(steps, **limits) -> OutputTail:
    tail = OutputTail(**limits)
    for stream, data in steps:
        if data is CLOSE:
            tail.close(stream)
        else:
            tail.append(stream, data)
    return tail


@pytest.mark.parametrize(
    ("steps", "limits", "expected"),
    [
        (
            [(ERR, b"disk "), (OUT, b"step 0\n"), (ERR, b"full\n")],
            {},
            b"step 0\ndisk full\n",
        ),
        (
            [(OUT, b"a\n"), (ERR, b"b\n"), (OUT, b"c\n"), (ERR, b"d\n")],
            {},
            b"a\nb\nc\nd\n",
        ),
        (
            [(OUT, b"a\nb\npar"), (ERR, b"x\ny"), (OUT, b"tial\n"), (ERR, b"\n")],
            {},
            b"a\nb\nx\npartial\ny\n",
        ),
        (
            [(OUT, b"no newline at the end"), (OUT, CLOSE), (ERR, b"error\n")],
            {},
            b"no newline at the end\nerror\n",
        ),
        ([(OUT, b"the "), (OUT, b"end"), (OUT, CLOSE)], {}, b"the end"),
        ([(OUT, b"a\n"), (ERR, b"still writing")], {}, b"a\nstill writing"),
        (
            [(OUT, b"0123456789"), (ERR, b"e\n"), (OUT, b"ab\n")],
            {"line_limit": 8},
            b"0123456789\ne\nab\n",
        ),
        ([(OUT, b"0123456789"), (OUT, b"ab\n")], {"line_limit": 8}, b"0123456789ab\n"),
        (
            [(OUT, b"one\n"), (ERR, b"two\n"), (OUT, b"three\n")],
            {"limit": 10},
            b"two\nthree\n",
        ),
        ([(OUT, b"\r\n\x00\xff"), (ERR, b"\xfe\n")], {}, b"\r\n\xfe\n\x00\xff"),
        ([(ERR, b"x"), (ERR, CLOSE), (ERR, CLOSE), (OUT, CLOSE)], {}, b"x"),
    ],
    ids=[
        "split-line-waits-for-its-newline",
        "whole-lines-keep-arrival-order",
        "several-lines-in-one-read",
        "stream-end-places-the-partial-line",
        "single-stream-stays-byte-exact",
        "open-stream-partial-line-comes-last",
        "size-cap-places-a-long-line",
        "same-stream-continues-after-the-cap",
        "keeps-the-last-bytes",
        "binary-bytes-unchanged",
        "closing-twice-is-harmless",
    ],
)
def test_tail_merges_the_streams_by_whole_lines(steps, limits, expected):
    assert _feed(steps, **limits).value() == expected


def test_tail_counts_every_byte_written_and_keeps_the_last_ones_in_order():
    tail = _feed([(OUT, b"abc"), (OUT, b"defghij"), (OUT, b"klmno")], limit=10)

    assert tail.value() == b"fghijklmno"
    assert tail.total == 15


def test_tail_value_does_not_consume_a_held_line():
    tail = _feed([(OUT, b"a\n"), (ERR, b"disk ")])

    assert tail.value() == b"a\ndisk "
    tail.append(ERR, b"full\n")
    assert tail.value() == b"a\ndisk full\n"


def _read_until(fd: int, wanted: bytes, seen: bytearray, deadline: float) -> None:
    """Read `fd` into `seen` until `seen` ends with `wanted`; fail at `deadline`."""
    while not seen.endswith(wanted):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{wanted!r} never passed through; got {bytes(seen[-200:])!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            data = os.read(fd, 65536)
            if not data:
                raise AssertionError(f"pipe closed before {wanted!r}; got {bytes(seen[-200:])!r}")
            seen += data


ROUNDS = 150


def test_line_written_in_two_parts_while_stdout_writes_stays_whole(tmp_path):
    # Each round: stderr gets "disk " (unbuffered, no newline); once the test saw it on the
    # terminal, stdout writes a whole line; once the test saw that, stderr finishes its line.
    # The tail must hold "disk " back and place "disk full <i>" as one line after "step <i>".
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    child = (
        "import os\n"
        f"go = open({str(fifo)!r}, 'rb', buffering=0)\n"
        f"for i in range({ROUNDS}):\n"
        "    os.write(2, b'disk ')\n"
        "    go.read(1)\n"
        "    os.write(1, b'step %d\\n' % i)\n"
        "    go.read(1)\n"
        "    os.write(2, b'full %d\\n' % i)\n"
        "    go.read(1)\n"
    )
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    shown = {"out": bytearray(), "err": bytearray()}
    failures: list[BaseException] = []

    def drive():
        try:
            deadline = time.monotonic() + 60
            with open(fifo, "wb", buffering=0) as go:
                for i in range(ROUNDS):
                    _read_until(err_r, b"disk ", shown["err"], deadline)
                    go.write(b".")
                    _read_until(out_r, b"step %d\n" % i, shown["out"], deadline)
                    go.write(b".")
                    _read_until(err_r, b"full %d\n" % i, shown["err"], deadline)
                    go.write(b".")
        except BaseException as error:
            failures.append(error)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    try:
        # The timeout only ends a run whose driver failed (the child then waits forever).
        completed = run_command(
            python_command(child), stdout_fd=out_w, stderr_fd=err_w, timeout=90, kill_after=1
        )
    finally:
        driver.join(10)
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)

    assert failures == []
    assert completed.exit_status == 0
    # The terminal got both streams byte for byte, each part as soon as it was written.
    assert shown["out"] == b"".join(b"step %d\n" % i for i in range(ROUNDS))
    assert shown["err"] == b"".join(b"disk full %d\n" % i for i in range(ROUNDS))
    expected = b"".join(b"step %d\ndisk full %d\n" % (i, i) for i in range(ROUNDS))
    assert completed.output_tail == expected[-len(completed.output_tail) :]
    assert len(completed.output_tail) == min(len(expected), 10 * 1024)


def test_split_writes_racing_on_both_streams_never_share_a_line(tmp_path):
    # No turns taken here: both streams write lines in small unbuffered pieces as fast as they
    # can, from two threads, so the pumps interleave however the scheduler likes. Whatever the
    # interleaving, every line of the tail is one whole line of one stream, in its order.
    child = (
        "import os, threading\n"
        "def write(fd, name):\n"
        "    for i in range(300):\n"
        "        for part in (name, b' line ', b'%d' % i, b'\\n'):\n"
        "            os.write(fd, part)\n"
        "threads = [threading.Thread(target=write, args=(1, b'out')),\n"
        "           threading.Thread(target=write, args=(2, b'err'))]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
    )
    for _ in range(20):
        out, err = tmp_path / "out", tmp_path / "err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            completed = run_command(
                python_command(child),
                stdout_fd=stdout.fileno(),
                stderr_fd=stderr.fileno(),
                tail_limit=1 << 20,
            )

        assert completed.exit_status == 0
        lines = completed.output_tail.splitlines()
        assert [x for x in lines if x.startswith(b"out")] == [
            b"out line %d" % i for i in range(300)
        ]
        assert [x for x in lines if x.startswith(b"err")] == [
            b"err line %d" % i for i in range(300)
        ]
        assert len(lines) == 600
        assert out.read_bytes() == b"".join(b"out line %d\n" % i for i in range(300))
        assert err.read_bytes() == b"".join(b"err line %d\n" % i for i in range(300))
