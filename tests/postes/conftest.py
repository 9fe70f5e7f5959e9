from datetime import date
from decimal import Decimal

import pytest

from postes.models import Occupation, Poste, RegleCofinancement
from postes.regles import seed_regles


@pytest.fixture
def regles(db):
    # Transactional tests flush the tables, data migrations included: seed the rules again.
    seed_regles(RegleCofinancement)


def make_poste(beneficiaire, *, creation=date(2021, 3, 1), **fields) -> Poste:
    poste = Poste.objects.create(
        intitule=fields.pop("intitule", "Chef de projet PVD"),
        employeur_siren=fields.pop("siren", beneficiaire.epci_id or "200066744"),
        employeur_nom=fields.pop("employeur", str(beneficiaire.epci or beneficiaire.nom)),
        date_creation=creation,
        **fields,
    )
    poste.beneficiaires.set([beneficiaire])
    poste.communes.set(beneficiaire.communes.all())
    return poste


def occupe(poste, debut, fin=None, prenom="Camille", nom="Martin") -> Occupation:
    return Occupation.objects.create(
        poste=poste,
        prenom=prenom,
        nom=nom,
        email=f"{prenom.lower()}.{nom.lower()}@example.fr",
        date_debut=debut,
        date_fin=fin,
    )


@pytest.fixture
def poste_ussel(ussel_la_courtine, regles):
    poste = make_poste(ussel_la_courtine, etat=Poste.Etat.POURVU)
    occupe(poste, date(2021, 9, 1))
    return poste


@pytest.fixture
def poste_le_blanc(le_blanc, regles):
    return make_poste(le_blanc, siren=le_blanc.epci_id, employeur="CC Brenne - Val de Creuse")


def cofinancement_data(annee, cout, **lignes) -> dict:
    """POST data of the co-financing page: lignes={'anct': (demandé, notifié, versé)}."""
    data = {
        "annee": annee,
        "cout_charge": cout,
        "reference_dossier": "DS-12345678",
        "date_demande": f"{annee}-02-01",
        "lignes-TOTAL_FORMS": 4,
        "lignes-INITIAL_FORMS": 4,
        "lignes-MIN_NUM_FORMS": 0,
        "lignes-MAX_NUM_FORMS": 1000,
    }
    for i, financeur in enumerate(["anct", "bdt", "etat", "anah"]):
        demande, notifie, verse = lignes.get(financeur, (0, 0, 0))
        data |= {
            f"lignes-{i}-financeur": financeur,
            f"lignes-{i}-montant_demande": demande,
            f"lignes-{i}-montant_notifie": notifie,
            f"lignes-{i}-date_notification": f"{annee}-04-15" if notifie else "",
            f"lignes-{i}-montant_verse": verse,
            f"lignes-{i}-date_versement": f"{annee}-06-30" if verse else "",
        }
    return data


EURO = Decimal
