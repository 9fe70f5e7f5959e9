from django.db import migrations

from actions.catalogue import seed_financeurs

def seed(apps, schema_editor):
    seed_financeurs(apps.get_model("actions", "Financeur"))


class Migration(migrations.Migration):
    dependencies = [("actions", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
