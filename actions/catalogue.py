"""The funders catalogue as it stood when the plans moved into the portal; managed afterwards."""

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


def seed_financeurs(model) -> None:
    """Create the missing funders (the model class is passed so migrations can use it)."""
    for ordre, (nom, description) in enumerate(FINANCEURS, 1):
        model.objects.get_or_create(nom=nom, defaults={"description": description, "ordre": ordre})
