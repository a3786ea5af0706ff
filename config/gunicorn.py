"""gunicorn settings for production (Dockerfile, docker-compose.yml):

    gunicorn --config python:config.gunicorn config.wsgi:application

Threads, not sync workers. A sync worker serves one connection from its first byte to its
last: three clients dripping a POST body held all three workers of a default deployment, and
every ping waited 30 s until gunicorn's worker timeout killed them (issue 14). A gthread
worker waits for idle and keep-alive connections in one poller and gives a thread only to a
connection that has sent something, so a slow client holds one of WEB_THREADS threads per
worker and the others go on answering. Pings are short and spend their time waiting on
PostgreSQL, which suits threads.

Each thread may keep a database connection (CONN_MAX_AGE), so WEB_CONCURRENCY x WEB_THREADS
must stay below PostgreSQL's max_connections with the workers' share. A client that holds
more connections than there are threads can still stall a bare gunicorn, so on the open
internet a buffering reverse proxy stands in front: deploy/nginx.conf, the proxy service of
docker-compose.yml (tests/test_proxy_slow_clients.py).

Every value can be overridden on the command line or in GUNICORN_CMD_ARGS.
"""

import os


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, not {value}")
    return value


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = _positive_int("WEB_CONCURRENCY", 2)
threads = _positive_int("WEB_THREADS", 16)
# The main loop of a gthread worker answers the arbiter's heartbeat whatever its threads do,
# so this only restarts a worker that is stuck as a whole.
timeout = 30
graceful_timeout = 20
# Idle keep-alive connections wait in the poller, holding no thread; close them after 5 s.
keepalive = 5
# Bounded request heads: a request line and header fields are all a ping needs.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# Restart each worker now and then (jittered, so never all at once) to bound any slow leak.
max_requests = 20_000
max_requests_jitter = 2_000
accesslog = None
errorlog = "-"
