"""The co-financing rules of the programme as published (docs/domaine.md §5), with sources."""

from datetime import date
from decimal import Decimal

AIDES_TERRITOIRES = (
    "Aides-territoires, « Bénéficier du co-financement d'un poste de chef de projet PVD » "
    "(fiche d'aide, date limite 31 mars 2026) : https://petitesvillesdedemain.aides-territoires"
    ".beta.gouv.fr/47ab-beneficier-du-co-financement-dun-poste-de-che/"
)
SWITCH = (
    " La date à laquelle cette règle a remplacé la règle Banque des Territoires de 2021 n'est "
    "pas publiée : le 1er janvier 2023 est retenu, à confirmer avec l'ANCT."
)

REGLES = [
    {
        "libelle": "Banque des Territoires 2021 : 25 % du coût, 15 000 € par an",
        "financeur": "bdt",
        "condition": "toujours",
        "date_debut": date(2021, 1, 1),
        "date_fin": date(2022, 12, 31),
        "taux": Decimal("25"),
        "plafond_annuel": Decimal("15000"),
        "source": "Banque des Territoires, « Petites villes de demain : la campagne de "
        "recrutement des chefs de projet bat son plein » (2021) : "
        "https://banquedesterritoires.fr/petites-villes-de-demain-la-campagne-de-recrutement-"
        "des-chefs-de-projet-bat-son-plein — sous réserve des missions définies du chef de "
        "projet.",
    },
    {
        "libelle": "Cofinancement ANCT, Banque des Territoires, État : 75 % du coût chargé, "
        "45 000 € par an",
        "financeur": "",
        "condition": "sans_anah",
        "date_debut": date(2023, 1, 1),
        "date_fin": None,
        "taux": Decimal("75"),
        "plafond_annuel": Decimal("45000"),
        "source": AIDES_TERRITOIRES + SWITCH,
    },
    {
        "libelle": "Cofinancement avec l'Anah : 75 % du coût chargé, 55 000 € par an",
        "financeur": "",
        "condition": "avec_anah",
        "date_debut": date(2023, 1, 1),
        "date_fin": None,
        "taux": Decimal("75"),
        "plafond_annuel": Decimal("55000"),
        "source": AIDES_TERRITOIRES + SWITCH,
    },
    {
        "libelle": "Part de l'Anah : 50 % du coût chargé, 40 000 € par an",
        "financeur": "anah",
        "condition": "toujours",
        "date_debut": date(2023, 1, 1),
        "date_fin": None,
        "taux": Decimal("50"),
        "plafond_annuel": Decimal("40000"),
        "source": AIDES_TERRITOIRES + SWITCH,
    },
]


def seed_regles(model) -> None:
    """Create the published rules that are missing (the model is passed for migrations)."""
    for row in REGLES:
        model.objects.get_or_create(
            libelle=row["libelle"], date_debut=row["date_debut"], defaults=row
        )
