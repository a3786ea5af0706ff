"""Recording a ping: the hot path.

One round trip on PostgreSQL: a single statement whose CTE updates the check (a conditional
UPDATE keyed by the check's id, which is its ping URL's UUID, or by team and slug; no
load-modify-save) and inserts the Ping row from what the UPDATE returned. On SQLite (single
host) it is the same UPDATE and INSERT in one transaction. Nothing here touches Redis or
Celery, and nothing here judges the ping: the UPDATE marks the check due (`alert_after = now`)
and the sweeper, which owns every rule and every transition, folds the ping in within one sweep
interval.

On PostgreSQL the statement goes through a psycopg cursor that binds parameters on the server,
still wrapped by Django (error translation, query logging), so that psycopg can keep it as a
prepared statement when the connection allows it: Django turns preparing off by default
(transaction-mode PgBouncer before 1.21 cannot route prepared statements) and
`DATABASE_URL=...?prepare_threshold=0` turns it on. Parsing and planning the statement on every
ping is most of the database's work for a ping; see bench/README.md for the figures.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from uuid import UUID

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections, transaction

from .models import Check, Ping


@dataclass(frozen=True)
class PingData:
    kind: str  # a Ping.Kind value
    method: str
    exit_status: int | None = None
    run_id: UUID | None = None
    remote_addr: str = ""
    user_agent: str = ""
    body: bytes = b""
    body_truncated: bool = False
    attempt: int | None = None
    max_attempts: int | None = None
    processed: int | None = None
    failed_items: int | None = None
    done: int | None = None
    total: int | None = None
    sent_at: datetime | None = None
    ignored_input: str = ""  # malformed optional query values left out, for the record


_CHECK = Check._meta.db_table
_PING = Ping._meta.db_table
_TEAM = Check._meta.get_field("team").related_model._meta.db_table


_TEAM_OF_KEY = f"(SELECT id FROM {_TEAM} WHERE ping_key = %(ping_key)s)"
_WHERE = {
    "token": "id = %(token)s",
    # Slugs are not unique (as in Healthchecks): a slug two checks of the team share matches
    # neither, and the caller answers 409 (see count_slug_checks). Both lookups use the
    # check_team_slug index.
    "slug": (
        f"team_id = {_TEAM_OF_KEY} AND slug = %(slug)s AND NOT EXISTS (SELECT 1 FROM {_CHECK} "
        f"twin WHERE twin.team_id = {_CHECK}.team_id AND twin.slug = {_CHECK}.slug "
        f"AND twin.id <> {_CHECK}.id)"
    ),
}
_FACTS = (
    "kind, run_id, exit_status, method, remote_addr, user_agent, body, body_truncated, "
    "attempt, max_attempts, processed, failed_items, done, total, sent_at, ignored_input, outcome"
)
# Server-side binding sends a NULL without a type: the casts give the SELECT list the column
# types (an untyped NULL would be text, which a uuid or integer column refuses).
_FACT_PARAMS = (
    "%(kind)s, %(run_id)s::uuid, %(exit_status)s::smallint, %(method)s, %(remote_addr)s, "
    "%(user_agent)s, %(body)s, %(body_truncated)s, %(attempt)s::integer, "
    "%(max_attempts)s::integer, %(processed)s::bigint, %(failed_items)s::bigint, "
    "%(done)s::bigint, %(total)s::bigint, %(sent_at)s::timestamptz, %(ignored_input)s, ''"
)


def _set_clause(now: str) -> str:
    return f"n_pings = n_pings + 1, last_ping_at = {now}, alert_after = {now}"


@lru_cache(maxsize=8)
def _postgresql_statement(lookup: str, injected_now: bool) -> str:
    now = "%(now)s::timestamptz" if injected_now else "now()"
    return (
        f"WITH c AS (UPDATE {_CHECK} SET {_set_clause(now)} WHERE {_WHERE[lookup]} "
        f"RETURNING id, n_pings) "
        f"INSERT INTO {_PING} (check_id, n, received_at, {_FACTS}) "
        f"SELECT c.id, c.n_pings, {now}, {_FACT_PARAMS} FROM c "
        f"RETURNING check_id"
    )


@lru_cache(maxsize=8)
def _sqlite_statements(lookup: str) -> tuple[str, str]:
    update = (
        f"UPDATE {_CHECK} SET {_set_clause('%(now)s')} WHERE {_WHERE[lookup]} RETURNING id, n_pings"
    )
    # SQLite has no ::type casts (nor needs them: its parameters carry their types).
    plain_params = re.sub(r"::\w+", "", _FACT_PARAMS)
    insert = (
        f"INSERT INTO {_PING} (check_id, n, received_at, {_FACTS}) "
        f"VALUES (%(check_id)s, %(n)s, %(now)s, {plain_params})"
    )
    return update, insert


def record_ping(
    *,
    ping: PingData,
    token: UUID | None = None,
    ping_key: str | None = None,
    slug: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Record one ping for the check named by `token`, or by the team's `ping_key` and `slug`.

    Writes: the check's n_pings, last_ping_at and alert_after, plus one Ping row. Returns False
    when no check matches (nothing is written). `now` is for tests; in production the database clock
    stamps the ping. Not idempotent: every call is one more ping, as with any HTTP retry.
    """
    db = connections[DEFAULT_DB_ALIAS]
    lookup = "token" if token is not None else "slug"
    params = {
        "token": token,
        "ping_key": ping_key,
        "slug": slug,
        "kind": ping.kind,
        "run_id": ping.run_id,
        "exit_status": ping.exit_status,
        "method": ping.method,
        "remote_addr": ping.remote_addr[:64],
        "user_agent": ping.user_agent[:200],
        "body": ping.body,
        "body_truncated": ping.body_truncated,
        "attempt": ping.attempt,
        "max_attempts": ping.max_attempts,
        "processed": ping.processed,
        "failed_items": ping.failed_items,
        "done": ping.done,
        "total": ping.total,
        "sent_at": ping.sent_at,
        "ignored_input": ping.ignored_input,
        "now": now,
    }
    if db.vendor == "postgresql":
        return _record_ping_postgresql(db, _postgresql_statement(lookup, now is not None), params)
    return _record_ping_sqlite(db, lookup, params, now)


def _record_ping_postgresql(db, statement: str, params: dict) -> bool:
    # No health check here (Django's `SELECT 1` before the first query of a request costs as
    # much database time as the ping itself). Instead a persistent connection that turns out to
    # be dead is replaced and the ping sent once more, so that a database restart still costs
    # no ping. Nothing is retried inside a caller's transaction or on a fresh connection.
    reused = db.connection is not None
    try:
        return _execute_ping_statement(db, statement, params)
    except (OperationalError, InterfaceError):
        if not reused or db.in_atomic_block or db.is_usable():
            raise
        db.close()
    return _execute_ping_statement(db, statement, params)


def _execute_ping_statement(db, statement: str, params: dict) -> bool:
    with _server_binding_cursor(db) as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone() is not None


def _server_binding_cursor(db):
    """Django's cursor wrapper over a server-binding psycopg cursor (Django's own cursors bind
    on the client, which rules out prepared statements)."""
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = psycopg.Cursor(db.connection)
    return db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)


def _record_ping_sqlite(db, lookup: str, params: dict, now: datetime | None) -> bool:
    from django.utils import timezone

    update, insert = _sqlite_statements(lookup)
    adapt = db.ops.adapt_datetimefield_value
    params["now"] = adapt(now or timezone.now())
    params["sent_at"] = adapt(params["sent_at"]) if params["sent_at"] else None
    for key in ("token", "run_id"):
        # Django stores UUIDs as 32 hex digits on backends without a native uuid type.
        if params[key] is not None:
            params[key] = params[key].hex
    with transaction.atomic(using=db.alias), db.cursor() as cursor:
        cursor.execute(update, params)
        row = cursor.fetchone()
        if row is None:
            return False
        params["check_id"], params["n"] = row
        cursor.execute(insert, params)
    return True


def count_slug_checks(*, ping_key: str, slug: str) -> int:
    """How many checks of the team with `ping_key` have `slug` (the ping path's miss path asks,
    to answer 409 for a shared slug)."""
    return Check.objects.filter(team__ping_key=ping_key, slug=slug).count()


def prune_pings(*, keep: int | None = None) -> int:
    """Delete all but the newest `keep` pings of every check, never one the sweeper has not yet
    folded in. Runs from beat, never from the ping path. Returns the number of rows deleted."""
    keep = keep or settings.PINGS_KEPT_PER_CHECK
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_PING} WHERE id IN (SELECT p.id FROM {_PING} p "
            f"JOIN {_CHECK} c ON c.id = p.check_id "
            f"WHERE p.n <= c.n_pings - %s AND p.n <= c.processed_n)",
            [keep],
        )
        return cursor.rowcount
