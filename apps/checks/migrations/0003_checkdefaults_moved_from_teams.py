# CheckDefaults moves from the teams app to the checks app (layers: teams knows nothing of
# checks). The table stays as it is; only Django's model state changes hands.

import datetime

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("checks", "0002_check_escalation_policy_and_dependencies"),
        ("escalation", "0001_escalation_policies_rotations_silences"),
        ("teams", "0003_check_defaults_for_auto_provisioning"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CheckDefaults",
                    fields=[
                        (
                            "team",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="check_defaults",
                                serialize=False,
                                to="teams.team",
                            ),
                        ),
                        (
                            "schedule_kind",
                            models.CharField(
                                choices=[
                                    ("period", "period"),
                                    ("cron", "cron"),
                                    ("oncalendar", "oncalendar"),
                                ],
                                default="period",
                                max_length=12,
                            ),
                        ),
                        ("period", models.DurationField(default=datetime.timedelta(days=1))),
                        ("schedule_expression", models.CharField(blank=True, max_length=200)),
                        ("timezone", models.CharField(default="UTC", max_length=64)),
                        ("grace", models.DurationField(default=datetime.timedelta(seconds=3600))),
                        (
                            "tags",
                            models.CharField(
                                blank=True, help_text="Space-separated.", max_length=500
                            ),
                        ),
                        ("max_checks", models.PositiveIntegerField(default=500)),
                        ("refused_pings", models.PositiveIntegerField(default=0)),
                        ("last_refused_slug", models.CharField(blank=True, max_length=100)),
                        ("last_refused_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "escalation_policy",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="escalation.escalationpolicy",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "check defaults",
                        "db_table": "teams_checkdefaults",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
