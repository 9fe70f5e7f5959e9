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


# The catalogue funders that also co-finance the posts of chefs de projet, with their code in
# postes.models.Financeur. The ANCT funds no action: it is listed, out of the forms, for its
# partners to read its co-financing of posts.
CODES_POSTE = {"ANCT": "anct", "Banque des Territoires": "bdt", "FNADT": "etat", "Anah": "anah"}


def seed_codes_poste(model) -> None:
    """Point the catalogue at the posts' funders (the model class is passed for migrations)."""
    for nom, code in CODES_POSTE.items():
        financeur, _ = model.objects.get_or_create(
            nom=nom,
            defaults={
                "description": "Agence nationale de la cohésion des territoires",
                "ordre": 100,
                "actif": False,
            },
        )
        if financeur.code_poste != code:
            financeur.code_poste = code
            financeur.save(update_fields=["code_poste"])
