"""Per-request cost of a WSGI app called in-process (no HTTP server), with an optional profile.

    DATABASE_URL=... SECRET_KEY=... .venv/bin/python bench/profile_app.py tocsin [--profile]
    REFERENCE_DATABASE_URL=... .venv/bin/python bench/profile_app.py reference

Calls the app N times with a GET /ping/<token> environ, round robin over bench/var/tokens.txt,
and prints microseconds per request (wall and CPU of this process). The difference between the
two apps is the Python each ping costs beyond the database round trips. bench/run.py --profile
runs it for both after the HTTP runs.
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load(app_name: str):
    if app_name == "tocsin":
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        from config.wsgi import application

        return application
    sys.path.insert(0, str(ROOT / "bench"))
    from reference_app import application

    return application


def backend_pid(app_name: str) -> int:
    if app_name == "tocsin":
        from django.db import connection

        return connection.connection.info.backend_pid
    import reference_app

    return reference_app._local.conn.info.backend_pid


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def environ_for(token: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/ping/{token}",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8101",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8101",
        "HTTP_USER_AGENT": "wrk",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def run(app, tokens: list[str], n: int) -> None:
    statuses = []

    def start_response(status, headers):
        statuses.append(status)

    for i in range(n):
        body = app(environ_for(tokens[i % len(tokens)]), start_response)
        b"".join(body)
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        sys.exit(f"{len(bad)} non-200 answers, first: {bad[0]}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("app", choices=["tocsin", "reference"])
    p.add_argument("-n", type=int, default=5000)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--top", type=int, default=35)
    args = p.parse_args()
    tokens = (ROOT / "bench/var/tokens.txt").read_text().split()
    app = load(args.app)
    run(app, tokens, 200)  # connect, warm caches
    backend = backend_pid(args.app)
    wall, cpu, db = time.perf_counter(), time.process_time(), cpu_seconds(backend)
    run(app, tokens, args.n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    db = cpu_seconds(backend) - db
    print(
        f"{args.app}: per ping {wall / args.n * 1e6:.0f} us wall, "
        f"{cpu / args.n * 1e6:.0f} us CPU in Python, {db / args.n * 1e6:.0f} us CPU in its "
        f"PostgreSQL backend ({args.n} pings)"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(app, tokens, args.n)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
