import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from actions.models import FicheAction, Financeur, LigneFinancement, ensure_axes
from communes.models import Beneficiaire
from conventions.models import Convention

# A made-up SIRET for the tests (14 digits, Luhn-valid, the textbook SIREN 123456782): the
# real funders' SIRETs are in none of our sources.
SIRET_DSIL = "12345678200010"


def fiche(beneficiaire, reference: str, cout, lignes=(), **fields) -> FicheAction:
    """A fiche with its financing lines, given as (funder, amount, status, decision date)."""
    ensure_axes(beneficiaire)
    created = FicheAction.objects.create(
        beneficiaire=beneficiaire,
        axe=beneficiaire.axes.get(numero=1),
        reference=reference,
        titre=fields.pop("titre", f"Fiche {reference}"),
        cout_total=cout,
        **fields,
    )
    for nom, montant, statut, decision in lignes:
        LigneFinancement.objects.create(
            fiche=created,
            financeur=Financeur.objects.get(nom=nom),
            montant=Decimal(montant),
            statut=statut,
            date_decision=decision,
        )
    return created


@pytest.fixture
def financements(territoires):
    """Notified lines in Indre and Haute-Corrèze: DSIL has a SIRET, the Région none."""
    Financeur.objects.filter(nom="DSIL").update(siret=SIRET_DSIL)
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc")
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    commune = FicheAction.MaitreOuvrage.COMMUNE
    fiche(
        le_blanc,
        "1.1",
        100000,
        [
            ("DSIL", "40000.50", "notifie", date(2024, 3, 1)),  # published
            ("Région", "20000", "notifie", date(2024, 4, 1)),  # no SIRET: left out
            ("DSIL", "5000", "prevu", None),  # not notified: not a grant
        ],
        maitre_ouvrage_type=commune,
        date_debut_prevue=date(2024, 1, 1),
        date_fin_prevue=date(2026, 12, 31),
    )
    fiche(
        ussel,
        "2.1",
        None,
        [("DSIL", "12000", "verse", date(2025, 1, 15))],  # the EPCI's: published
        maitre_ouvrage_type=FicheAction.MaitreOuvrage.EPCI,
    )
    fiche(
        ussel,
        "2.2",
        80000,
        [("DSIL", "8000", "notifie", date(2025, 2, 1))],  # a duo, no commune said: left out
        maitre_ouvrage_type=commune,
    )
    Convention.objects.create(
        beneficiaire=le_blanc,
        type=Convention.Type.CADRE,
        titre="Convention-cadre PVD valant ORT – Le Blanc",
        statut=Convention.Statut.SIGNEE,
        date_signature=date(2023, 6, 12),
        date_entree_vigueur=date(2023, 6, 12),
    )


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))
