"""The benchmark's reference: a bare WSGI callable, no framework, doing a success ping's work.

It is the floor Tocsin is measured against, so it must do the same work and keep the same
guarantees, and nothing more:
- the same tables and indexes (its database is migrated with Tocsin's own migrations);
- the same statement as Tocsin's record_ping on PostgreSQL for a plain success ping: one UPDATE
  of the check found by its (unique, indexed) ping token and one INSERT of the Ping row with
  the same columns, in one round trip (a CTE), with the database clock stamping the ping;
- the same durability: autocommit, so every answered ping is committed (synchronous_commit is
  the server default for both);
- a persistent connection per worker thread, opened on first use;
- the same answer: 200 "OK" text/plain with the same headers, 404 for an unknown token.

It reads REFERENCE_DATABASE_URL (a libpq URL) and REFERENCE_PREPARE_THRESHOLD: unset keeps
psycopg's default (prepare a statement after 5 uses), "none" turns preparing off as Django does
by default, a number sets psycopg's threshold.
It only knows GET, HEAD and POST /ping/<uuid>, the URL form the benchmark drives.
"""

import os
import threading
from uuid import UUID

import psycopg

DSN = os.environ["REFERENCE_DATABASE_URL"]
BODY_LIMIT = int(os.environ.get("PING_BODY_LIMIT", str(100 * 1024)))
_PREPARE = os.environ.get("REFERENCE_PREPARE_THRESHOLD", "")
CONNECT_OPTIONS = (
    {} if not _PREPARE else {"prepare_threshold": None if _PREPARE == "none" else int(_PREPARE)}
)

RECORD_SUCCESS = """
WITH c AS (
    UPDATE checks_check
    SET n_pings = n_pings + 1, last_ping_at = now(), alert_after = now()
    WHERE id = %(token)s
    RETURNING id, n_pings
)
INSERT INTO checks_ping (check_id, n, received_at, kind, run_id, exit_status, method,
                         remote_addr, user_agent, body, body_truncated, attempt, max_attempts,
                         processed, failed_items, done, total, sent_at, ignored_input, outcome)
SELECT c.id, c.n_pings, now(), 'success', NULL, NULL, %(method)s, %(remote_addr)s,
       %(user_agent)s, %(body)s, %(body_truncated)s, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '',
       ''
FROM c
RETURNING check_id
"""

HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0"),
    ("Access-Control-Allow-Origin", "*"),
]
_local = threading.local()


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DSN, autocommit=True, **CONNECT_OPTIONS)
    return conn


def _answer(start_response, status: str, text: bytes, method: str):
    payload = b"" if method == "HEAD" else text
    start_response(status, [*HEADERS, ("Content-Length", str(len(payload)))])
    return [payload]


def application(environ, start_response):
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    if method not in ("GET", "HEAD", "POST"):
        return _answer(start_response, "405 Method Not Allowed", b"method not allowed", method)
    try:
        if not path.startswith("/ping/"):
            raise ValueError(path)
        token = UUID(path[6:].strip("/"))
    except ValueError:
        return _answer(start_response, "404 Not Found", b"not found", method)
    body, truncated = b"", False
    if method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        truncated = len(body) > BODY_LIMIT
        body = body[:BODY_LIMIT]
    params = {
        "token": token,
        "method": method,
        "remote_addr": environ.get("REMOTE_ADDR", "")[:64],
        "user_agent": environ.get("HTTP_USER_AGENT", "")[:200],
        "body": body,
        "body_truncated": truncated,
    }
    try:
        found = _connection().execute(RECORD_SUCCESS, params).fetchone() is not None
    except psycopg.OperationalError:
        _local.conn = None
        return _answer(start_response, "503 Service Unavailable", b"unavailable", method)
    if not found:
        return _answer(start_response, "404 Not Found", b"not found", method)
    return _answer(start_response, "200 OK", b"OK", method)
