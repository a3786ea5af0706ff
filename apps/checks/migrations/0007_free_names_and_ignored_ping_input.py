"""Free names (as in Healthchecks): a check's name and slug need not be unique and may be
empty; slugs are lower case (a ping URL written with capitals still finds its check). Pings
record the malformed optional values they were accepted without."""

from django.db import migrations, models
from django.db.models.functions import Lower


def lower_slugs(apps, schema_editor):
    Check = apps.get_model("checks", "Check")
    Check.objects.exclude(slug=Lower("slug")).update(slug=Lower("slug"))


class Migration(migrations.Migration):
    dependencies = [("checks", "0006_remove_check_ping_token")]

    operations = [
        migrations.RemoveConstraint(model_name="check", name="unique_check_slug_per_team"),
        migrations.AddIndex(
            model_name="check",
            index=models.Index(fields=["team", "slug"], name="check_team_slug"),
        ),
        migrations.AlterField(
            model_name="check", name="name", field=models.CharField(blank=True, max_length=100)
        ),
        migrations.AlterField(
            model_name="check", name="slug", field=models.SlugField(blank=True, max_length=100)
        ),
        migrations.AddField(
            model_name="ping",
            name="ignored_input",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.RunPython(lower_slugs, migrations.RunPython.noop),
    ]
