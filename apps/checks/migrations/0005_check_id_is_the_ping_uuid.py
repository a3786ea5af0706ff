"""One identity per check: every check takes its ping token as its id.

Before, a check had a primary key (shown by the API and in dashboard URLs) and a separate ping
token (in its ping URL). Ping URLs are in jobs' crontabs and cannot be changed from here, so the
ping token survives: it becomes the id, every row that refers to the check follows it, and
0004 drops the ping_token column. API clients and dashboard bookmarks that held the old id see
the new one (no release used it). Silence and maintenance-window matchers name checks by id in
JSON, so they are rewritten too.
"""

from django.db import migrations


def _references(check_model):
    """(table, column) of every foreign key to a check, many-to-many tables included."""
    for field in check_model._meta.get_fields(include_hidden=True):
        if field.auto_created and not field.concrete and (field.one_to_many or field.one_to_one):
            yield field.related_model._meta.db_table, field.field.column


def take_ping_token_as_id(apps, schema_editor):
    Check = apps.get_model("checks", "Check")
    checks = Check._meta.db_table
    quote = schema_editor.quote_name
    renamed = {str(old): str(new) for old, new in Check.objects.values_list("id", "ping_token")}
    with schema_editor.connection.cursor() as cursor:
        for table, column in set(_references(Check)):
            cursor.execute(
                f"UPDATE {quote(table)} SET {quote(column)} = (SELECT ping_token FROM "
                f"{quote(checks)} WHERE {quote(checks)}.id = {quote(table)}.{quote(column)}) "
                f"WHERE {quote(column)} IS NOT NULL"
            )
        cursor.execute(f"UPDATE {quote(checks)} SET id = ping_token")
        if schema_editor.connection.vendor == "postgresql":
            # The foreign keys are deferred: check them now, so that 0004's ALTER TABLE does
            # not meet pending trigger events.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for model_name in ("Silence", "MaintenanceWindow"):
        try:
            model = apps.get_model("escalation", model_name)
        except LookupError:
            continue
        for row in model.objects.exclude(matchers={}).only("id", "matchers"):
            ids = (row.matchers or {}).get("check_ids") or []
            if ids:
                row.matchers["check_ids"] = sorted(renamed.get(str(i), str(i)) for i in ids)
                model.objects.filter(id=row.id).update(matchers=row.matchers)


class Migration(migrations.Migration):
    dependencies = [
        ("checks", "0004_merge_evaluation_failure_and_checkdefaults"),
        ("escalation", "0001_escalation_policies_rotations_silences"),
        ("incidents", "0002_incident_escalation_state"),
    ]

    operations = [migrations.RunPython(take_ping_token_as_id, migrations.RunPython.noop)]
