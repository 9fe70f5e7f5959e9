from django.db import migrations


def seed(apps, schema_editor):
    from postes.regles import seed_regles

    seed_regles(apps.get_model("postes", "RegleCofinancement"))


class Migration(migrations.Migration):
    dependencies = [("postes", "0001_posts_occupations_cofinancing")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
