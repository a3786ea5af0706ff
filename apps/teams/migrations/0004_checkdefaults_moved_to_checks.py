# CheckDefaults now belongs to the checks app (apps/checks/migrations/0003); its table stays.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0003_check_defaults_for_auto_provisioning"),
        ("checks", "0003_checkdefaults_moved_from_teams"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="CheckDefaults")],
            database_operations=[],
        ),
    ]
