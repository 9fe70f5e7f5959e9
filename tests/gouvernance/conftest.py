from datetime import date, time
from decimal import Decimal

import pytest

from actions.models import LigneFinancement
from gouvernance.models import Instance, Membre, Reunion
from tests.actions.test_plan_readmodel import make_fiche

TODAY = date(2026, 3, 16)  # tests/conftest.py ``today``


def a_comite(beneficiaire) -> Instance:
    return Instance.objects.create(
        type=Instance.Type.COMITE_PROJET,
        nom=f"Comité de projet – {beneficiaire.nom}",
        beneficiaire=beneficiaire,
    )


def a_reunion(instance, day: date = TODAY, **fields) -> Reunion:
    fields.setdefault("lieu", "Mairie d'Ussel")
    return Reunion.objects.create(
        instance=instance, date=day, heure_debut=time(14), heure_fin=time(16), **fields
    )


@pytest.fixture
def comite(ussel_la_courtine, elu_ussel, cdp_ussel) -> Instance:
    instance = a_comite(ussel_la_courtine)
    Membre.objects.create(
        instance=instance,
        organisation="Commune d'Ussel",
        personne="Le maire",
        role=Membre.Role.PRESIDENT,
        user=elu_ussel,
    )
    Membre.objects.create(
        instance=instance,
        organisation="Préfecture de la Corrèze",
        personne="Le sous-préfet, à Ussel; salle 2",
        role=Membre.Role.MEMBRE,
        email="sous-prefet@correze.example.fr",
    )
    Membre.objects.create(instance=instance, organisation="Banque des Territoires", role="invite")
    return instance


@pytest.fixture
def clct_36(territoires) -> Instance:
    return Instance.objects.create(
        type=Instance.Type.CLCT,
        nom="Comité local de cohésion territoriale de l'Indre",
        departement_id="36",
        reunions_par_an=2,
    )


@pytest.fixture
def ligne(ussel_la_courtine) -> LigneFinancement:
    fiche = make_fiche(
        ussel_la_courtine, "1.1", cout=Decimal("100000"), lignes=[("DETR", Decimal("20000"))]
    )
    return fiche.financements.get()
