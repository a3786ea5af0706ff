"""Badge URLs are public (embedded in READMEs) and used to carry the check's id, which is now
its ping URL: each check gets a random badge key of its own for them."""

import uuid

from django.db import migrations, models


def give_badge_keys(apps, schema_editor):
    Check = apps.get_model("checks", "Check")
    for check_id in Check.objects.values_list("id", flat=True):
        Check.objects.filter(id=check_id).update(badge_key=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("checks", "0007_free_names_and_ignored_ping_input")]

    operations = [
        migrations.AddField(
            model_name="check", name="badge_key", field=models.UUIDField(null=True, editable=False)
        ),
        migrations.RunPython(give_badge_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="check",
            name="badge_key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
