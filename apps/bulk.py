"""Writing many rows at once, below every app (like the clock).

A sweep that opens hundreds of incidents writes thousands of rows. Django's bulk_create and
bulk_update compile one placeholder per value (bulk_update also a CASE per field and row), and
psycopg then parses that long, ever-different SQL text on the client each time: together they
cost more than the rows themselves. On PostgreSQL these helpers send one statement whose text
depends only on the model and the fields, with one array parameter per column, unpacked by
unnest() and typed by the fields' own column types: psycopg caches its parse, and the compile
is a few string joins. The arrays travel in binary, bound on the server: a client-side cursor
would quote every element into the SQL text, escaping each JSON document character by
character. Elsewhere (SQLite) they are Django's bulk_create and bulk_update.
"""

import json
import operator
from contextlib import contextmanager

from django.db import connection


def update_many(model, objects, fields: list[str]) -> None:
    """Write `fields` of every object in `objects` (saved rows of `model`) in one statement."""
    objects = list(objects)
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objects, fields)
        return
    meta, quote = model._meta, connection.ops.quote_name
    changed = [meta.get_field(name) for name in fields]
    columns = [meta.pk, *changed]
    rows, params = _column_arrays(columns, objects, adding=False)
    pk = quote(meta.pk.column)
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in changed)
    sql = f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM {rows} WHERE t.{pk} = v.{pk}"
    with bound_cursor() as cursor:
        cursor.execute(sql, params)


def insert_many(model, objects, *, ignore_conflicts: bool = False) -> list:
    """Insert `objects` (new instances of `model`) in one statement; as bulk_create, but a
    database-generated primary key is set on each object only when `ignore_conflicts` is
    False (a skipped row has none). Returns the objects."""
    objects = list(objects)
    if not objects:
        return objects
    if connection.vendor != "postgresql":
        return model.objects.bulk_create(objects, ignore_conflicts=ignore_conflicts)
    for obj in objects:
        # As bulk_create: a related object saved after it was assigned gives its key now.
        obj._prepare_related_fields_for_save(operation_name="insert_many")
    meta, quote = model._meta, connection.ops.quote_name
    # An auto-incremented key not set on the objects: the database numbers the rows. Objects
    # with and without one are inserted apart, as bulk_create does.
    with_pk = [obj for obj in objects if obj.pk is not None]
    if meta.pk.db_returning and 0 < len(with_pk) < len(objects):
        insert_many(model, with_pk, ignore_conflicts=ignore_conflicts)
        insert_many(
            model, [obj for obj in objects if obj.pk is None], ignore_conflicts=ignore_conflicts
        )
        return objects
    generated_pk = meta.pk.db_returning and not with_pk
    columns = [
        field
        for field in meta.concrete_fields
        if not (generated_pk and field.primary_key) and not getattr(field, "generated", False)
    ]
    rows, params = _column_arrays(columns, objects, adding=True)
    names = ", ".join(quote(field.column) for field in columns)
    sql = f"INSERT INTO {quote(meta.db_table)} ({names}) SELECT {names} FROM {rows}"
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    elif generated_pk:
        sql += f" RETURNING {quote(meta.pk.column)}"
    with bound_cursor() as cursor:
        cursor.execute(sql, params)
        if generated_pk and not ignore_conflicts:
            # unnest() keeps the arrays' order and INSERT ... SELECT inserts in that order, so
            # the keys come back in the objects' order.
            for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
                setattr(obj, meta.pk.attname, pk)
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objects


# Column types whose Python values psycopg sends as they are: for these, Django's
# get_db_prep_save (a chain of calls per value) only hands the value back.
_AS_THEY_ARE = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateTimeField",
    "DurationField",
    "FloatField",
    "ForeignKey",
    "IntegerField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
    "UUIDField",
}


def _column_arrays(columns, objects, *, adding: bool) -> tuple[str, list]:
    """`unnest(%b::type[], ...) AS v(col, ...)` and its parameters: one array per column,
    each value as Django saves it: on insert through pre_save (auto_now_add and friends), on
    update as the object holds it (as bulk_update does)."""
    quote = connection.ops.quote_name
    arrays = [[prepare(obj) for obj in objects] for prepare in _preparers(columns, adding)]
    casts = ", ".join(f"%b::{field.db_type(connection)}[]" for field in columns)
    names = ", ".join(quote(field.column) for field in columns)
    return f"unnest({casts}) AS v({names})", arrays


def _preparers(columns, adding: bool) -> list:
    preparers = []
    for field in columns:
        kind = field.get_internal_type()
        computed = adding and (
            getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        )
        if kind == "JSONField" and not computed:
            # Sent as JSON text and cast to jsonb by the statement.
            preparers.append(_json_text(field))
        elif kind in _AS_THEY_ARE and not computed:
            preparers.append(operator.attrgetter(field.attname))
        else:
            preparers.append(_through_django(field, adding))
    return preparers


def _json_text(field):
    def prepare(obj):
        value = getattr(obj, field.attname)
        return None if value is None else json.dumps(value, cls=field.encoder)

    return prepare


def _through_django(field, adding: bool):
    def prepare(obj):
        raw = field.pre_save(obj, True) if adding else getattr(obj, field.attname)
        return field.get_db_prep_save(raw, connection)

    return prepare


@contextmanager
def bound_cursor():
    """A cursor of Django's connection (PostgreSQL) that binds parameters on the server; it
    goes through Django's wrapper, so query logging, execute wrappers and error translation
    see its statements as any other."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
    cursor = connection._prepare_cursor(raw)
    try:
        yield cursor
    finally:
        cursor.close()
