from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("checks", "0005_check_id_is_the_ping_uuid")]

    operations = [migrations.RemoveField(model_name="check", name="ping_token")]
