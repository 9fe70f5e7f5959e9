import json
import re
from datetime import date
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from frictionless import Resource, Schema

from actions.models import Financeur
from communes.models import Beneficiaire, MembreBeneficiaire
from opendata import publication
from opendata.jeux import JEUX
from opendata.models import Publication
from tests.opendata.conftest import SIRET_DSIL, read_csv

# Made-up, Luhn-valid (the Région's real SIRET is in none of our sources).
SIRET_REGION = "12345678200028"

SCHEMA_PATH = Path(__file__).parents[2] / "opendata" / "schemas" / "scdl-subventions-2.1.1.json"


def scdl_schema() -> Schema:
    return Schema.from_descriptor(json.loads(SCHEMA_PATH.read_text()))


def validate_scdl(content: bytes, folder: Path):
    """frictionless' report on a SCDL file as published (its bytes, read as a CSV file)."""
    (folder / "subventions.csv").write_bytes(content)
    resource = Resource(path="subventions.csv", basepath=str(folder), schema=scdl_schema())
    return resource.validate()


def publish() -> dict[str, Publication]:
    """Every data set published as the beat does it (tasks run eagerly in tests, once the
    rows are committed)."""
    with django_db_on_commit():
        publication.request_all()
    return {p.jeu: p for p in Publication.objects.dernieres()}


def django_db_on_commit():
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


def download(client, slug: str) -> list[list[str]]:
    response = client.get(f"/opendata/{slug}.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return read_csv(b"".join(response.streaming_content))


def test_anonymous_visitor_sees_every_file_with_its_columns_licence_date_and_rows(
    client, financements
):
    published = publish()
    response = client.get("/opendata/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Licence Ouverte 2.0" in page
    for jeu in JEUX:
        assert jeu.titre in page
        assert f"/opendata/{jeu.slug}.csv" in page
        for colonne, _ in jeu.colonnes:
            assert f"<code>{colonne}</code>" in page
        assert published[jeu.slug].statut == Publication.Statut.PRET
    liste = published["liste-pvd"]
    assert f"{liste.lignes} lignes" in page
    # The SCDL file's lines left out, each with its reason; no link for the public.
    assert "1 ligne notifiée non publiée : financeur sans SIRET" in page
    assert "1 ligne notifiée non publiée : maître d&#x27;ouvrage autre qu&#x27;une commune" in page
    assert "/actions/financeurs/" not in page


def test_page_says_a_file_not_yet_published(client, territoires):
    response = client.get("/opendata/")
    assert response.status_code == 200
    assert "Ce fichier n’a pas encore été publié." in response.content.decode()
    assert client.get("/opendata/liste-pvd.csv").status_code == 404
    assert client.get("/opendata/inconnu.csv").status_code == 404


def test_pvd_list_has_exactly_anct_four_columns(client, financements):
    publish()
    rows = download(client, "liste-pvd")
    assert rows[0] == ["insee_com", "lib_com", "id_pvd", "date_signature"]
    by_code = {row[0]: row for row in rows[1:]}
    laureates = MembreBeneficiaire.objects.filter(actif=True, beneficiaire__statut="laureat")
    assert set(by_code) == set(laureates.values_list("commune_id", flat=True))
    # ANCT's latest id (COG 2023 list), ISO dates or empty.
    assert by_code["19148"][:3] == ["19148", "Neuvic", "pvd-75-19-17"]
    assert all(len(row) == 4 for row in rows)
    assert all(re.fullmatch(r"(\d{4}-\d{2}-\d{2})?", row[3]) for row in rows[1:])
    # The adhésion date entered for a beneficiary is its communes' date_signature.
    Beneficiaire.objects.filter(nom="Le Blanc").update(date_adhesion_saisie=date(2021, 5, 3))
    publish()
    assert ["36018", "Le Blanc", "pvd-24-36-4", "2021-05-03"] in download(client, "liste-pvd")


def test_files_are_kept_with_their_date_and_served_from_storage(client, financements):
    first = publish()["liste-pvd"]
    second = publish()["liste-pvd"]
    assert first.pk != second.pk
    assert default_storage.exists(first.fichier.name)
    assert default_storage.exists(second.fichier.name)
    response = client.get(f"/opendata/liste-pvd/{first.pk}.csv")
    assert response.status_code == 200
    assert "Last-Modified" in response
    # The page offers the latest file and lists the previous one with its date.
    page = client.get("/opendata/").content.decode()
    archives = page.split("Versions précédentes")[1]
    assert f"/opendata/liste-pvd/{first.pk}.csv" in archives
    assert f"/opendata/liste-pvd/{second.pk}.csv" not in page


def test_a_file_is_dated_by_its_refresh_and_answers_304(client, financements):
    from datetime import timedelta

    from django.utils.http import http_date, parse_http_date

    first = publish()["liste-pvd"]
    Publication.objects.filter(pk=first.pk).update(
        finished_at=first.finished_at - timedelta(hours=1)
    )
    first.refresh_from_db()
    response = client.get("/opendata/liste-pvd.csv")
    assert parse_http_date(response["Last-Modified"]) == int(first.finished_at.timestamp())
    since = response["Last-Modified"]
    assert client.get("/opendata/liste-pvd.csv", HTTP_IF_MODIFIED_SINCE=since).status_code == 304
    old = f"/opendata/liste-pvd/{first.pk}.csv"
    assert client.get(old, HTTP_IF_MODIFIED_SINCE=since).status_code == 304
    # A new refresh: the latest file is sent again, the old one stays as it was.
    second = publish()["liste-pvd"]
    response = client.get("/opendata/liste-pvd.csv", HTTP_IF_MODIFIED_SINCE=since)
    assert response.status_code == 200
    assert response["Last-Modified"] == http_date(int(second.finished_at.timestamp()))
    assert client.get(old, HTTP_IF_MODIFIED_SINCE=since).status_code == 304


def test_scdl_file_validates_against_schema_2_1_1(client, financements, tmp_path):
    published = publish()
    sub = published["subventions"]
    assert (sub.lignes, sub.lignes_exclues) == (2, 2)
    assert sub.exclusions == {"sans_siret": 1, "sans_date": 0, "maitre_ouvrage": 1}
    content = default_storage.open(sub.fichier.name).read()
    rows = read_csv(content)
    assert rows[0] == scdl_schema().field_names
    report = validate_scdl(content, tmp_path)
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert {r["nomBeneficiaire"] for r in records} == {
        "Le Blanc",
        "CC Haute-Corrèze Communauté",
    }
    le_blanc = next(r for r in records if r["nomBeneficiaire"] == "Le Blanc")
    assert le_blanc["idAttribuant"] == SIRET_DSIL
    assert le_blanc["montant"] == "40000.50"
    assert le_blanc["datesPeriodeVersement"] == "2024-01-01/2026-12-31"
    assert le_blanc["pourcentageSubvention"] == "0.40"
    assert le_blanc["idBeneficiaire"] == ""  # no commune SIRET in the reference data


def test_the_schema_catches_a_bad_file(tmp_path):
    """The validation above can fail: a short SIRET and an unknown nature are refused."""
    header = scdl_schema().field_names
    row = dict.fromkeys(header, "")
    row.update(
        nomAttribuant="DSIL",
        idAttribuant="123",
        dateConvention="2024-03-01",
        nomBeneficiaire="Le Blanc",
        objet="x",
        montant="10",
        nature="prêt",
        conditionsVersement="unique",
        datesPeriodeVersement="2024-03-01",
        notificationUE="non",
    )
    report = Resource(data=[header, list(row.values())], schema=scdl_schema()).validate()
    assert not report.valid
    assert {e[0] for e in report.flatten(["fieldName"])} >= {"idAttribuant", "nature"}


def test_figures_by_departement(client, financements):
    publish()
    rows = download(client, "chiffres-departements")
    header, *lines = rows
    by_dep = {row[0]: dict(zip(header, row, strict=True)) for row in lines}
    assert set(by_dep) == {"19", "36"}
    assert by_dep["36"]["beneficiaires"] == "16"
    assert by_dep["36"]["montant_notifie"] == "60000.50"
    funders = download(client, "financements-departements")
    assert ["36", "Indre", "Région", "0.00", "0.00", "20000.00", "0.00"] in funders


def test_conventions_cadres_list_signed_ones(client, financements):
    publish()
    rows = download(client, "conventions-cadres-ort")
    assert len(rows) == 2
    assert rows[1][1] == "Le Blanc" and rows[1][8] == "2023-06-12"


@pytest.mark.parametrize("slug", ["liste-pvd", "subventions"])
def test_a_publication_is_a_job_row_built_by_the_beat_task(financements, slug):
    from opendata.tasks import publish_opendata

    with django_db_on_commit():
        assert publish_opendata.delay().get() == len(JEUX)
    assert Publication.objects.filter(jeu=slug, statut=Publication.Statut.PRET).count() == 1


def test_national_staff_are_sent_to_enter_the_missing_siret_and_the_line_is_published(
    client_for, national, financements, tmp_path
):
    """The Région's notified line waits for its SIRET: national staff follow the page's link,
    enter it on the catalogue, and the next file carries the line (and still validates)."""
    publish()
    client = client_for(national)
    page = client.get("/opendata/").content.decode()
    assert "1 ligne notifiée non publiée : financeur sans SIRET" in page
    assert 'href="/actions/financeurs/">saisir le SIRET des financeurs</a>' in page
    region = Financeur.objects.get(nom="Région")
    response = client.post(
        f"/actions/financeurs/{region.pk}/modifier/",
        {"nom": "Région", "ordre": region.ordre, "actif": "on", "siret": SIRET_REGION},
    )
    assert response.status_code == 302
    sub = publish()["subventions"]
    assert (sub.lignes, sub.exclusions["sans_siret"]) == (3, 0)
    content = default_storage.open(sub.fichier.name).read()
    assert validate_scdl(content, tmp_path).valid
    assert SIRET_REGION in content.decode()
    assert "financeur sans SIRET" not in client.get("/opendata/").content.decode()


def test_a_notified_line_without_decision_date_is_counted_apart(financements):
    from actions.models import LigneFinancement

    LigneFinancement.objects.filter(montant=12000).update(date_decision=None)
    sub = publish()["subventions"]
    assert sub.exclusions == {"sans_siret": 1, "sans_date": 1, "maitre_ouvrage": 1}
    assert (sub.lignes, sub.lignes_exclues) == (1, 3)
