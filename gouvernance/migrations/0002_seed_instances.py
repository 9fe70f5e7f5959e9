from django.db import migrations

from gouvernance.seed import seed_instances


def seed(apps, schema_editor):
    seed_instances(
        apps.get_model("gouvernance", "Instance"),
        apps.get_model("communes", "Beneficiaire"),
        apps.get_model("communes", "Departement"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("gouvernance", "0001_instances_reunions_decisions"),
        ("conventions", "0010_past_dates_within_bounds"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
