#!/bin/sh
# Tocsin's benchmarks (every figure of issue 11): see bench/README.md. Arguments go to
# bench/run.py (--help; --smoke for small sizes, --only <scenario,...> for some).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    echo "no virtualenv at $ROOT/.venv: run the README's install/run command first" >&2
    exit 1
fi
exec "$ROOT/.venv/bin/python" "$ROOT/bench/run.py" "$@"
