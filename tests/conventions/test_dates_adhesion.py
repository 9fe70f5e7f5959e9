"""Unknown adhésion dates: counted beside every deadline figure, listed to be completed, and
filled by the préfecture one by one or from a file (all or nothing)."""

import csv
import html
import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from communes.models import Beneficiaire, MembreBeneficiaire
from conventions.echeances import sans_date_adhesion
from pvd.models import ImportRun

pytestmark = pytest.mark.django_db

IMPORT = reverse("conventions:dates-adhesion-import")


def content(response) -> str:
    return html.unescape(response.content.decode())


def unknown(**filters) -> int:
    return sans_date_adhesion(Beneficiaire.objects.filter(**filters)).count()


def csv_file(rows, name="dates.csv") -> SimpleUploadedFile:
    text = "\n".join(";".join(str(c) for c in row) for row in rows)
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def xlsx_file(rows) -> SimpleUploadedFile:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    output = io.BytesIO()
    workbook.save(output)
    return SimpleUploadedFile("dates.xlsx", output.getvalue())


# The figures --------------------------------------------------------------------------------


def test_national_and_departement_figures_count_the_unknown_dates(
    client_for, national, ussel_la_courtine
):
    client = client_for(national)
    total = unknown()
    assert total > 0  # the cast's lauréats come without any adhésion date
    home = content(client.get(reverse("portail:home")))
    assert f"dont {total} sans date d’adhésion connue" in home
    correze = content(client.get(reverse("tableaux:departement", args=["19"])))
    assert f"dont {unknown(departement_id='19')} sans date d’adhésion connue" in correze
    aquitaine = content(client.get(reverse("tableaux:region", args=["75"])))
    n = unknown(departement__region_id="75")
    assert f"dont {n} sans date d’adhésion connue" in aquitaine

    MembreBeneficiaire.objects.filter(beneficiaire=ussel_la_courtine).update(
        date_signature=date(2021, 6, 1)
    )
    ussel_la_courtine.save()  # a change the dashboards' cache follows
    home = content(client.get(reverse("portail:home")))
    assert f"dont {total - 1} sans date d’adhésion connue" in home


def test_the_synthese_counts_them_by_departement(client_for, national):
    page = content(client_for(national).get(reverse("communes:synthese")))
    assert f"dont {unknown()} sans date d’adhésion connue" in page
    assert "dont sans date d’adhésion connue" in page  # the table's column


def test_the_echeances_page_lists_those_of_my_departement_to_complete(
    client_for, prefecture_19, ussel_la_courtine, le_blanc
):
    page = content(client_for(prefecture_19).get(reverse("conventions:echeances")))
    assert "Dates d’adhésion à compléter" in page
    words = " ".join(page.split())
    assert "sans date d’adhésion connue n’apparaissent pas dans cette liste" in words
    assert ussel_la_courtine.nom in page and le_blanc.nom not in page
    assert reverse("conventions:date-adhesion", args=[ussel_la_courtine.pk]) in page


def test_the_prefecture_export_says_unknown_rather_than_blank(client_for, prefecture_19):
    response = client_for(prefecture_19).get(reverse("tableaux:beneficiaires-export", args=["csv"]))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = {row[1]: row for row in csv.reader(io.StringIO(text), delimiter=";")}
    assert rows["Ussel – La Courtine"][3] == "inconnue (date d'adhésion à compléter)"
    assert rows["Ussel – La Courtine"][5] == "inconnue (date d'adhésion à compléter)"


# One by one ---------------------------------------------------------------------------------


def test_the_prefecture_fills_a_missing_date(client_for, prefecture_19, ussel_la_courtine):
    client = client_for(prefecture_19)
    url = reverse("conventions:date-adhesion", args=[ussel_la_courtine.pk])
    detail = content(
        client.get(reverse("communes:beneficiaire-detail", args=[ussel_la_courtine.pk]))
    )
    assert "Renseigner la date d’adhésion" in detail
    before = unknown()

    response = client.post(url, {"date": "2021-06-15"})

    assert response.status_code == 302
    ussel_la_courtine.refresh_from_db()
    assert ussel_la_courtine.date_adhesion_saisie == date(2021, 6, 15)
    assert ussel_la_courtine.date_adhesion_saisie_par == prefecture_19
    assert unknown() == before - 1
    detail = content(
        client.get(reverse("communes:beneficiaire-detail", args=[ussel_la_courtine.pk]))
    )
    assert "Convention-cadre à signer au plus tard le 15/12/2022" in detail


@pytest.mark.parametrize(
    "who, status",
    [("prefecture_36", 404), ("cdp_ussel", 403), ("elu_ussel", 403), ("partenaire", 403)],
)
def test_who_may_not_fill_it(request, client_for, ussel_la_courtine, who, status):
    client = client_for(request.getfixturevalue(who))
    url = reverse("conventions:date-adhesion", args=[ussel_la_courtine.pk])
    assert client.get(url).status_code == status
    assert client.post(url, {"date": "2021-06-15"}).status_code == status
    ussel_la_courtine.refresh_from_db()
    assert ussel_la_courtine.date_adhesion_saisie is None


def test_national_staff_may_fill_it(client_for, national, le_blanc):
    url = reverse("conventions:date-adhesion", args=[le_blanc.pk])
    assert client_for(national).post(url, {"date": "2021-05-03"}).status_code == 302
    le_blanc.refresh_from_db()
    assert le_blanc.date_adhesion_saisie == date(2021, 5, 3)


@pytest.mark.parametrize(
    "day, message",
    [
        ("2099-01-01", "dans le futur"),
        ("2019-05-01", "précède le lancement du programme (1er octobre 2020)"),
        ("pas une date", "Saisissez une date valide"),
    ],
)
def test_bad_dates_are_refused_and_change_nothing(
    client_for, prefecture_19, ussel_la_courtine, day, message
):
    url = reverse("conventions:date-adhesion", args=[ussel_la_courtine.pk])
    response = client_for(prefecture_19).post(url, {"date": day})
    assert response.status_code == 200
    assert message in content(response)
    ussel_la_courtine.refresh_from_db()
    assert ussel_la_courtine.date_adhesion_saisie is None


def test_a_date_known_from_anct_list_is_not_overwritten(
    client_for, prefecture_19, ussel_la_courtine
):
    MembreBeneficiaire.objects.filter(beneficiaire=ussel_la_courtine).update(
        date_signature=date(2021, 6, 1)
    )
    url = reverse("conventions:date-adhesion", args=[ussel_la_courtine.pk])
    response = client_for(prefecture_19).post(url, {"date": "2021-07-01"})
    assert "est déjà connue (01/06/2021" in content(response)
    ussel_la_courtine.refresh_from_db()
    assert ussel_la_courtine.date_adhesion_saisie is None


# From a file --------------------------------------------------------------------------------


def test_the_prefecture_fills_dates_from_a_csv_file(client_for, prefecture_19, ussel_la_courtine):
    upload = csv_file([["Code INSEE", "Date d'adhésion"], ["19275", "15/06/2021"]])
    response = client_for(prefecture_19).post(IMPORT, {"fichier": upload})
    page = content(response)
    assert "Dates enregistrées : 1" in page
    ussel_la_courtine.refresh_from_db()
    assert ussel_la_courtine.date_adhesion_saisie == date(2021, 6, 15)
    assert ImportRun.objects.filter(kind="Dates d'adhésion").count() == 1


def test_the_template_lists_my_unknown_dates_and_an_xlsx_fills_them(
    client_for, prefecture_19, ussel_la_courtine, le_blanc
):
    client = client_for(prefecture_19)
    response = client.get(reverse("conventions:dates-adhesion-modele", args=["xlsx"]))
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["Identifiant", "Code INSEE", "Bénéficiaire", "Date d'adhésion"]
    ids = {row[0] for row in rows[1:]}
    assert ussel_la_courtine.pk in ids and le_blanc.pk not in ids
    filled = [rows[0]] + [[*row[:3], date(2021, 6, 15)] for row in rows[1:]]

    response = client.post(IMPORT, {"fichier": xlsx_file(filled)})

    assert f"Dates enregistrées : {len(filled) - 1}" in content(response)
    assert unknown(departement_id="19") == 0


@pytest.mark.parametrize(
    "row, message",
    [
        (["36018", "01/06/2021"], "n'est celui d'aucun lauréat"),  # Le Blanc: not mine
        (["19275", "31/02/2021"], "n'est pas une date qui existe"),
        (["19275", "01/06/2099"], "dans le futur"),
        (["19275", "=1+1"], "une formule n'est pas une date"),
        (["19275", ""], "la date d'adhésion manque"),
    ],
)
def test_one_bad_row_and_nothing_is_recorded(
    client_for, prefecture_19, ussel_la_courtine, territoires, row, message
):
    other = Beneficiaire.objects.filter(departement_id="19", statut="laureat").exclude(
        pk=ussel_la_courtine.pk
    )
    insee = MembreBeneficiaire.objects.filter(beneficiaire__in=other).first().commune_id
    upload = csv_file([["Code INSEE", "Date d'adhésion"], [insee, "15/06/2021"], row])
    response = client_for(prefecture_19).post(IMPORT, {"fichier": upload})
    page = content(response)
    assert "Fichier refusé : aucune date enregistrée" in page
    assert "Ligne 3 : " in page and message in page
    assert not Beneficiaire.objects.exclude(date_adhesion_saisie=None).exists()
    assert not ImportRun.objects.filter(kind="Dates d'adhésion").exists()


@pytest.mark.parametrize(
    "upload, message",
    [
        (SimpleUploadedFile("a.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100), "Excel 97-2003"),
        (SimpleUploadedFile("a.xlsx", b"PK\x03\x04 broken"), "pas un classeur Excel"),
        (SimpleUploadedFile("a.csv", "é".encode("latin-1") * 10), "CSV en UTF-8"),
        (SimpleUploadedFile("a.csv", b"nom;commentaire\nx;y"), "Colonnes attendues"),
    ],
)
def test_a_file_that_is_not_what_it_claims_is_refused(client_for, prefecture_19, upload, message):
    response = client_for(prefecture_19).post(IMPORT, {"fichier": upload})
    assert response.status_code == 200
    assert message in content(response)
    assert not Beneficiaire.objects.exclude(date_adhesion_saisie=None).exists()


@pytest.mark.parametrize("who", ["cdp_ussel", "elu_ussel", "partenaire", "sans_role"])
def test_read_only_roles_may_not_import(request, client_for, who, ussel_la_courtine):
    client = client_for(request.getfixturevalue(who))
    upload = csv_file([["Code INSEE", "Date d'adhésion"], ["19275", "15/06/2021"]])
    assert client.get(IMPORT).status_code == 403
    assert client.post(IMPORT, {"fichier": upload}).status_code == 403
    url = reverse("conventions:dates-adhesion-modele", args=["csv"])
    assert client.get(url).status_code == 403
    ussel_la_courtine.refresh_from_db()
    assert ussel_la_courtine.date_adhesion_saisie is None


def test_the_prefecture_home_says_how_many_deadlines_it_cannot_compute(client_for, prefecture_19):
    page = content(client_for(prefecture_19).get(reverse("portail:home")))
    n = unknown(departement_id="19")
    assert f"{n} lauréats sans convention-cadre et sans date d’adhésion connue" in page


def test_the_programme_exports_carry_the_unknowns(client_for, national):
    client = client_for(national)
    response = client.get(reverse("tableaux:france") + "?format=csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    column = rows[0].index("Lauréats sans date d'adhésion connue")
    assert sum(int(row[column]) for row in rows[1:]) == unknown()
    response = client.get(reverse("tableaux:departement", args=["19"]) + "?format=csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = {row[0]: row for row in csv.reader(io.StringIO(text), delimiter=";")}
    assert rows["Ussel – La Courtine"][-1] == "inconnue (date d'adhésion à compléter)"
