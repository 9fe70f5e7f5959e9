from django.db import migrations

# The catalogue as it stood when the plans moved into the portal; managed afterwards.
FINANCEURS = [
    ("DETR", "Dotation d'équipement des territoires ruraux"),
    ("DSIL", "Dotation de soutien à l'investissement local"),
    ("FNADT", "Fonds national d'aménagement et de développement du territoire"),
    ("Fonds vert", "Fonds d'accélération de la transition écologique"),
    ("Fonds friches", "Fonds de recyclage des friches"),
    ("Anah", "Agence nationale de l'habitat"),
    ("Banque des Territoires", "Caisse des Dépôts"),
    ("Région", "Conseil régional"),
    ("Département", "Conseil départemental"),
    ("FEDER", "Fonds européen de développement régional"),
    ("LEADER", "Programme européen LEADER"),
    ("DRAC", "Direction régionale des affaires culturelles"),
    ("Ademe", "Agence de la transition écologique"),
    ("Autofinancement", "Fonds propres du maître d'ouvrage"),
    ("Privé", "Financement privé"),
    ("Autre", "Autre financeur"),
]


def seed(apps, schema_editor):
    Financeur = apps.get_model("actions", "Financeur")
    for ordre, (nom, description) in enumerate(FINANCEURS, 1):
        Financeur.objects.get_or_create(
            nom=nom, defaults={"description": description, "ordre": ordre}
        )


class Migration(migrations.Migration):
    dependencies = [("actions", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
