"""Issue 24, item 4: the yearly refresh of the reference from the portal — files checked on
receipt, a simulation that changes nothing, then applied all or nothing; and the command
line run with the settings of `make run`."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from communes.models import Commune, MiseAJourReferentiel
from pvd.models import ImportRun

pytestmark = pytest.mark.django_db

REAL = settings.REFERENCE_DATA_DIR
DEPARTEMENTS = {"19", "23", "36"}  # the cast's
URL = reverse("portail:referentiel")


def real_files(rename: dict[str, str], drop: set[str]) -> tuple[bytes, bytes]:
    """The real COG 2024 and SIREN table of the cast's départements, the COG modified."""
    with open(REAL / "insee_cog_communes_2024-01-01.csv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        cog = io.StringIO()
        writer = csv.DictWriter(cog, reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        for row in reader:
            if row["DEP"] not in DEPARTEMENTS or row["COM"] in drop:
                continue
            if row["TYPECOM"] == "COM" and row["COM"] in rename:
                row["LIBELLE"] = row["NCCENR"] = rename[row["COM"]]
            writer.writerow(row)
    with open(REAL / "communes_epci_dep_reg_siren.csv", encoding="utf-8") as f:
        lines = f.read().splitlines()
    siren = [lines[0]] + [line for line in lines[1:] if line[:2] in DEPARTEMENTS]
    return cog.getvalue().encode(), ("\n".join(siren) + "\n").encode()


@pytest.fixture
def nouveau_cog():
    if not (REAL / "insee_cog_communes_2024-01-01.csv").exists():
        pytest.skip("reference data not on this machine")
    # Neuvic merged away (absent from the new COG), Ussel renamed.
    return real_files(rename={"19275": "Ussel-sur-Sarsonne"}, drop={"19148"})


def upload(cog: bytes, siren: bytes) -> dict:
    return {
        "cog": SimpleUploadedFile("v_commune_2025.csv", cog, "text/csv"),
        "siren": SimpleUploadedFile("siren_2025.csv", siren, "text/csv"),
    }


def simulate(client, files, capture) -> MiseAJourReferentiel:
    with capture(execute=True):
        response = client.post(URL, files)
    maj = MiseAJourReferentiel.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("portail:referentiel-detail", args=[maj.pk])
    maj.refresh_from_db()
    return maj


def test_national_simulates_a_new_cog_then_applies_it(
    client_for, national, nouveau_cog, django_capture_on_commit_callbacks
):
    client = client_for(national)
    before = Commune.objects.count()

    maj = simulate(client, upload(*nouveau_cog), django_capture_on_commit_callbacks)

    assert maj.statut == MiseAJourReferentiel.Statut.PRET, maj.erreur
    assert maj.mode == MiseAJourReferentiel.Mode.SIMULATION
    assert maj.requested_by == national
    rapport = maj.rapport
    assert rapport.startswith("Simulation : rien n'a été enregistré.")
    assert "Bort-les-Orgues – Neuvic : 19148 Neuvic n'est plus dans le COG" in rapport
    assert "Ussel – La Courtine : 19275 Ussel devient Ussel-sur-Sarsonne" in rapport
    assert "Import des territoires" in rapport
    assert "19148 Neuvic : absente du COG" in rapport
    assert f"Fichier COG : {maj.cog.name}" in rapport  # the kept file, not a temporary copy
    # The simulation changed nothing, and recorded no import.
    assert Commune.objects.count() == before
    assert Commune.objects.get(code="19275").nom == "Ussel"
    assert not ImportRun.objects.exists()
    # The report is kept as a file too, through the storage API.
    assert maj.fichier.read().decode() == rapport

    page = client.get(reverse("portail:referentiel-detail", args=[maj.pk]))
    assert "19275 Ussel devient Ussel-sur-Sarsonne" in page.content.decode()
    assert "Appliquer la mise à jour" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("portail:referentiel-appliquer", args=[maj.pk]))
    application = MiseAJourReferentiel.objects.get(mode=MiseAJourReferentiel.Mode.APPLICATION)
    assert response.url == reverse("portail:referentiel-detail", args=[application.pk])
    assert application.statut == MiseAJourReferentiel.Statut.PRET, application.erreur
    assert application.rapport.startswith("Mise à jour appliquée.")
    assert Commune.objects.get(code="19275").nom == "Ussel-sur-Sarsonne"
    assert Commune.objects.count() > before  # the other communes of 19, 23 and 36
    assert Commune.objects.filter(code="19148").exists()  # merged away: kept, reported
    assert ImportRun.objects.filter(kind="territoires").count() == 1

    # A second confirmation (double click, a colleague) applies nothing more.
    response = client.post(reverse("portail:referentiel-appliquer", args=[maj.pk]), follow=True)
    assert "déjà appliquée" in response.content.decode()
    assert MiseAJourReferentiel.objects.filter(mode="application").count() == 1
    # Nor can an older simulation be applied over the new state.
    page = client.get(reverse("portail:referentiel-detail", args=[maj.pk])).content.decode()
    assert "Appliquer la mise à jour" not in page


def test_a_stale_simulation_is_refused(
    client_for, national, nouveau_cog, django_capture_on_commit_callbacks
):
    client = client_for(national)
    first = simulate(client, upload(*nouveau_cog), django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        second_response = client.post(URL, upload(*nouveau_cog))
    second = MiseAJourReferentiel.objects.exclude(pk=first.pk).get()
    assert second_response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("portail:referentiel-appliquer", args=[second.pk]))

    response = client.post(reverse("portail:referentiel-appliquer", args=[first.pk]), follow=True)

    assert "mis à jour depuis cette simulation" in response.content.decode()
    assert MiseAJourReferentiel.objects.filter(simulation=first).count() == 0


def test_a_file_the_importer_refuses_is_refused_on_receipt(client_for, national, nouveau_cog):
    cog, siren = nouveau_cog
    broken = cog.replace(b"COM,19275,", b"COM,19A75,", 1)
    client = client_for(national)

    response = client.post(URL, upload(broken, siren))

    assert response.status_code == 200
    text = response.content.decode()
    assert "Fichier refusé" in text and "code INSEE invalide" in text
    assert not MiseAJourReferentiel.objects.exists()


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("TYPECOM,COM\n".encode("utf-16"), "cog.csv", "UTF-8"),
        (b"%PDF-1.7\n", "cog.pdf", "format CSV"),
    ],
)
def test_wrong_type_or_encoding_is_refused(
    client_for, national, nouveau_cog, content, name, message
):
    _, siren = nouveau_cog
    files = {
        "cog": SimpleUploadedFile(name, content),
        "siren": SimpleUploadedFile("siren.csv", siren),
    }
    response = client_for(national).post(URL, files)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not MiseAJourReferentiel.objects.exists()


def test_cog_without_siren_is_refused(client_for, national, nouveau_cog):
    files = {"cog": SimpleUploadedFile("cog.csv", nouveau_cog[0])}
    response = client_for(national).post(URL, files)
    assert "vont ensemble" in response.content.decode()
    assert not MiseAJourReferentiel.objects.exists()


def test_a_failing_import_reports_in_french_and_changes_nothing(
    client_for, national, django_capture_on_commit_callbacks
):
    """A datagouv list without its date: refused by the importer, read on the page."""
    liste = b"insee_com,lib_com,id_pvd,date_signature\n19275,Ussel,pvd-75-1923-10,\n"
    client = client_for(national)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(URL, {"liste_pvd": SimpleUploadedFile("liste.csv", liste)})
    maj = MiseAJourReferentiel.objects.get()
    assert maj.statut == MiseAJourReferentiel.Statut.ECHEC
    assert maj.erreur.startswith("Import annulé, base inchangée.")
    assert "--date-liste" in maj.erreur or "date" in maj.erreur
    page = client.get(reverse("portail:referentiel-detail", args=[maj.pk])).content.decode()
    assert "Import annulé, base inchangée." in page
    assert "Appliquer la mise à jour" not in page


@pytest.mark.parametrize("who", ["prefecture_19", "cdp_ussel", "elu_ussel", "partenaire"])
def test_only_national_staff_refresh_the_reference(client_for, who, request, national):
    maj = MiseAJourReferentiel.objects.create(requested_by=national, statut="pret")
    client = client_for(request.getfixturevalue(who))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {}).status_code == 403
    assert client.get(reverse("portail:referentiel-detail", args=[maj.pk])).status_code == 403
    response = client.post(reverse("portail:referentiel-appliquer", args=[maj.pk]))
    assert response.status_code == 403
    assert not MiseAJourReferentiel.objects.filter(mode="application").exists()


# The command line runs with the settings of `make run` ------------------------------------------


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=Path(settings.BASE_DIR),
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_defaults_to_the_development_settings_of_make_run():
    result = manage("import_territoires", "--help")
    assert result.returncode == 0, result.stderr
    assert "SECRET_KEY is required" not in result.stderr


def test_manage_py_still_requires_a_secret_key_when_debug_is_false():
    result = manage("import_territoires", "--help", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is false" in result.stderr


def test_the_ort_file_simulation_shows_the_conventions_it_would_match(
    client_for, national, django_capture_on_commit_callbacks
):
    from conventions.models import Convention

    path = REAL / "ort_conventions_suivi_national.csv"
    if not path.exists():
        pytest.skip("reference data not on this machine")
    before = Convention.objects.count()
    files = {"ort": SimpleUploadedFile("ort.csv", path.read_bytes(), "text/csv")}

    maj = simulate(client_for(national), files, django_capture_on_commit_callbacks)

    assert maj.statut == MiseAJourReferentiel.Statut.PRET, maj.erreur
    assert "Import du suivi national des ORT" in maj.rapport
    assert f"Fichier : {maj.ort.name}" in maj.rapport
    created = re.search(r"Conventions-cadres créées +: (\d+)", maj.rapport)
    assert created and int(created.group(1)) > 0  # the cast's signed ORT, matched
    assert Convention.objects.count() == before  # a simulation only
