"""Writing many rows at once, below every app (like the clock): Django's bulk_update builds a
CASE expression per field and row in Python, which costs more than the rows themselves once a
sweep writes hundreds of incidents. On PostgreSQL this sends one UPDATE ... FROM (VALUES ...)
instead, typed by the fields' own column types; elsewhere (SQLite) it is bulk_update."""

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
    row = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
    params = []
    for obj in objects:
        for field in columns:
            params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
    pk = quote(meta.pk.column)
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in changed)
    names = ", ".join(quote(field.column) for field in columns)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "
        f"FROM (VALUES {', '.join([row] * len(objects))}) AS v({names}) "
        f"WHERE t.{pk} = v.{pk}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
