"""make run with the official files: the real conventions-cadres and coordinates on the map."""

import io

import pytest
from django.conf import settings
from django.core.management import call_command

from communes.models import Commune
from conventions.models import Convention
from pvd.models import ImportRun, Role
from tests.factories import user_with_role

REAL = settings.REFERENCE_DATA_DIR


@pytest.mark.realdata
@pytest.mark.django_db
@pytest.mark.skipif(not REAL.is_dir(), reason=f"données de référence absentes : {REAL}")
def test_seed_with_reference_data_imports_ort_and_coordinates(client, empty_base):
    out = io.StringIO()
    call_command("seed_demo", reference_data=str(REAL), stdout=out)

    cadres = Convention.objects.filter(
        type=Convention.Type.CADRE, statut__in=Convention.STATUTS_SIGNES
    )
    assert cadres.count() == 1_197
    assert ImportRun.objects.filter(kind="ort").count() == 1
    assert Commune.objects.filter(latitude__isnull=False).count() == 34_867

    client.force_login(user_with_role("anct@test.pvd.fr", Role.Kind.NATIONAL))
    data = client.get("/carte/donnees.geojson").json()
    communes = [f for f in data["features"] if f["properties"]["couche"] == "commune"]
    departements = [f for f in data["features"] if f["properties"]["couche"] == "departement"]
    assert len(communes) > 1_600
    assert len(departements) > 90
    signees = sum(d["properties"]["signees"] for d in departements)
    assert signees > 1_000

    again = io.StringIO()
    call_command("seed_demo", reference_data=str(REAL), stdout=again)
    assert "Suivi national des ORT déjà importé." in again.getvalue()
    assert "Coordonnées des communes déjà importées." in again.getvalue()
    assert cadres.count() == 1_197
