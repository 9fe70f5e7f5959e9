"""Formula injection (issue 9, item 3): every CSV and XLSX the portal writes goes through
pvd/spreadsheets.py, and a user's text never becomes a formula."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from actions.excel_template import template_workbook
from actions.models import ExportPlan, FicheAction, Financeur, LigneFinancement, ensure_axes
from pvd.spreadsheets import csv_lines, csv_value, xlsx_response, xlsx_row

pytestmark = pytest.mark.django_db

HOSTILE = '=HYPERLINK("http://x","y")'
NEUTRALISED = "'" + HOSTILE


# The writer -------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_quotes_every_text_that_starts_like_a_formula(start):
    assert csv_value(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Halle couverte", "Halle couverte"),
        ("Rue de l'Église - 2e tranche", "Rue de l'Église - 2e tranche"),
        (Decimal("-1234.5"), "-1234,50"),
        (-3, "-3"),
        (date(2025, 3, 1), "2025-03-01"),
        (None, ""),
        (True, "oui"),
    ],
)
def test_csv_keeps_plain_texts_and_numbers_as_they_are(value, expected):
    assert csv_value(value) == expected


def test_csv_lines_neutralise_headers_and_rows():
    content = "".join(csv_lines(["Titre", "Montant"], [[HOSTILE, Decimal("-5")]]))
    rows = list(csv.reader(io.StringIO(content.lstrip("\ufeff")), delimiter=";"))
    assert rows == [["Titre", "Montant"], [NEUTRALISED, "-5,00"]]


@pytest.mark.parametrize("write_only", [True, False])
def test_xlsx_writes_texts_as_strings_and_numbers_as_numbers(write_only):
    workbook = Workbook(write_only=write_only)
    sheet = workbook.create_sheet("Feuille")
    sheet.append(xlsx_row(sheet, [HOSTILE, "-2 logements", Decimal("-12.5"), 7, None]))
    output = io.BytesIO()
    workbook.save(output)

    cells = load_workbook(io.BytesIO(output.getvalue()))["Feuille"][1]

    assert [(c.value, c.data_type) for c in cells] == [
        (HOSTILE, "s"),
        ("-2 logements", "s"),
        (-12.5, "n"),
        (7, "n"),
    ]
    assert cells[0].quotePrefix and not cells[2].quotePrefix


def test_xlsx_response_is_a_one_sheet_download_with_texts_as_strings():
    response = xlsx_response(["Nom", HOSTILE], iter([[HOSTILE, 3]]), "export-1", "Postes")

    assert response["Content-Disposition"] == 'attachment; filename="export-1.xlsx"'
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert workbook.sheetnames == ["Postes"]
    header, row = workbook["Postes"].iter_rows()
    assert [(c.value, c.data_type) for c in header] == [("Nom", "s"), (HOSTILE, "s")]
    assert [(c.value, c.data_type) for c in row] == [(HOSTILE, "s"), (3, "n")]


# Through each export ------------------------------------------------------------------------------


@pytest.fixture
def hostile_plan(ussel_la_courtine):
    """A fiche, an axis and a beneficiary named like formulas, with a financing line."""
    ensure_axes(ussel_la_courtine)
    axe = ussel_la_courtine.axes.get(numero=1)
    axe.nom = "@SUM(A1:A9)"
    axe.save()
    fiche = FicheAction.objects.create(
        beneficiaire=ussel_la_courtine,
        axe=axe,
        reference="1.1",
        titre=HOSTILE,
        maitre_ouvrage="+33 5 55 00 00 00",
        cout_total=Decimal("1000"),
    )
    LigneFinancement.objects.create(
        fiche=fiche,
        financeur=Financeur.objects.get(nom="DSIL"),
        dispositif="-cmd|' /C calc'!A0",
        montant=Decimal("400"),
    )
    return ussel_la_courtine


def csv_of(response) -> list[dict]:
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(content), delimiter=";"))
    return [dict(zip(header, row, strict=True)) for row in rows]


def xlsx_cells(content: bytes) -> list:
    workbook = load_workbook(io.BytesIO(content))
    return [
        cell
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.value is not None
    ]


def assert_no_formula(cells) -> None:
    assert cells
    assert all(cell.data_type != "f" for cell in cells)
    hostile = [cell for cell in cells if cell.value == HOSTILE]
    assert hostile and all(cell.data_type == "s" and cell.quotePrefix for cell in hostile)


def test_plan_csv_neutralises_formulas(client_for, cdp_ussel, hostile_plan):
    url = reverse("actions:export", kwargs={"pk": hostile_plan.pk, "format": "csv"})
    (row,) = csv_of(client_for(cdp_ussel).get(url))
    assert row["Titre"] == NEUTRALISED
    assert row["Maître d'ouvrage"] == "'+33 5 55 00 00 00"
    assert row["Coût total HT (€)"] == "1000,00"


def test_plan_xlsx_writes_no_formula(client_for, cdp_ussel, hostile_plan):
    url = reverse("actions:export", kwargs={"pk": hostile_plan.pk, "format": "xlsx"})
    response = client_for(cdp_ussel).get(url)
    assert_no_formula(xlsx_cells(b"".join(response.streaming_content)))


@pytest.mark.parametrize("format", ["csv", "xlsx"])
def test_departement_exports_neutralise_formulas(client_for, prefecture_19, hostile_plan, format):
    response = client_for(prefecture_19).get(
        reverse("actions:export-departement"), {"departement": "19", "format": format}
    )
    if format == "csv":
        assert [row["Titre"] for row in csv_of(response)] == [NEUTRALISED]
    else:
        assert_no_formula(xlsx_cells(b"".join(response.streaming_content)))


def test_national_csv_neutralises_formulas(client_for, national, hostile_plan):
    rows = csv_of(client_for(national).get(reverse("actions:export-national-csv")))
    assert [row["Titre"] for row in rows] == [NEUTRALISED]


def test_national_workbook_writes_no_formula(
    client_for, national, hostile_plan, django_capture_on_commit_callbacks
):
    client = client_for(national)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("actions:export-national"))
    export = ExportPlan.objects.get()
    assert export.statut == "pret"
    download = client.get(reverse("actions:export-download", args=[export.pk]))
    assert_no_formula(xlsx_cells(b"".join(download.streaming_content)))


def test_excel_import_template_writes_no_formula(client_for, cdp_ussel, hostile_plan):
    response = client_for(cdp_ussel).get(reverse("actions:excel-template", args=[hostile_plan.pk]))
    assert response.status_code == 200
    content = response.content if not response.streaming else b"".join(response.streaming_content)
    assert_no_formula(xlsx_cells(content))


def test_template_lists_a_funder_named_like_a_formula_as_a_text(hostile_plan):
    Financeur.objects.create(nom="=2+5", actif=True)
    workbook = template_workbook(hostile_plan)
    cells = [cell for row in workbook["Listes"].iter_rows() for cell in row]
    funders = [cell for cell in cells if cell.value == "=2+5"]
    assert funders and all(c.data_type == "s" and c.quotePrefix for c in funders)


@pytest.mark.parametrize("format", ["csv", "xlsx"])
def test_beneficiaires_exports_neutralise_formulas(client_for, national, ussel_la_courtine, format):
    ussel_la_courtine.nom = HOSTILE
    ussel_la_courtine.save()
    response = client_for(national).get(
        reverse("communes:beneficiaire-list"), {"export": format, "departement": "19"}
    )
    if format == "csv":
        assert NEUTRALISED in [row["Bénéficiaire"] for row in csv_of(response)]
    else:
        assert_no_formula(xlsx_cells(b"".join(response.streaming_content)))
