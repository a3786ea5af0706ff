from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("checks", "0002_check_escalation_policy_and_dependencies"),
    ]

    operations = [
        migrations.AddField(
            model_name="check",
            name="evaluation_error",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="check",
            name="evaluation_failed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
