"""Hostile plan workbooks: bombs, another plan's template, formulas, overlong texts."""

import io
import zipfile

import pytest
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from actions.excel import COLONNES_FICHES, COLONNES_FINANCEMENTS, Plan, ValeurInvalide
from actions.forms import FicheForm, LigneFinancementForm
from actions.models import FicheAction
from tests.actions import test_excel
from tests.actions.test_excel import (
    FICHES,
    FINANCEMENTS,
    snapshot,
    text_of,
    upload,
    workbook_bytes,
)

pytestmark = pytest.mark.django_db

plan_ussel = test_excel.plan_ussel
plan_le_blanc = test_excel.plan_le_blanc


def with_sheet_xml(content: bytes, sheet: str, xml: bytes) -> bytes:
    """The workbook with one sheet's XML replaced, everything else as is."""
    output = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            data = xml if item.filename == sheet else source.read(item.filename)
            target.writestr(item.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return output.getvalue()


def test_a_small_workbook_inflating_to_megabytes_of_blank_rows_is_refused_unopened(
    client_for, cdp_ussel, plan_ussel, monkeypatch
):
    before = snapshot(plan_ussel)
    rows = b"<row/>" * 11_000_000  # 66 MB once inflated
    xml = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<sheetData>" + rows + b"</sheetData></worksheet>"
    )
    bomb = with_sheet_xml(workbook_bytes(plan_ussel), "xl/worksheets/sheet1.xml", xml)
    assert len(bomb) < 1024 * 1024
    opened = []
    monkeypatch.setattr("actions.excel.load_workbook", lambda *a, **k: opened.append(a))
    response = upload(client_for(cdp_ussel), plan_ussel, bomb)
    # Refused from the archive's directory, before any sheet is inflated or parsed.
    assert opened == []
    assert "trop volumineux une fois décompressé" in text_of(response)
    assert snapshot(plan_ussel) == before


def test_blank_rows_count_towards_the_row_limit(client_for, cdp_ussel, plan_ussel):
    """A fiche after 25 000 blank rows: the rows are counted, not skipped for free."""

    def far_down(workbook):
        test_excel.put(workbook["Fiches"], 25_002, FICHES[1])

    before = snapshot(plan_ussel)
    response = upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, edit=far_down))
    page = text_of(response)
    assert "Feuille Fiches, ligne 20001 : feuille trop longue (20000 lignes au plus" in page
    assert snapshot(plan_ussel) == before


def test_reading_stops_at_the_time_limit_and_imports_nothing(
    client_for, cdp_ussel, plan_ussel, monkeypatch
):
    monkeypatch.setattr("actions.excel.MAX_SECONDES", -1)
    before = snapshot(plan_ussel)
    page = text_of(upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, FICHES)))
    assert "Feuille Fiches, ligne 2 : lecture interrompue après -1 secondes" in page
    assert snapshot(plan_ussel) == before


def test_the_workbook_of_another_plan_is_refused_and_changes_nothing(
    client_for, cdp_ussel, plan_ussel, plan_le_blanc
):
    """Le Blanc's template, fiche 1.1 included, may not overwrite Ussel's fiche 1.1."""
    before = snapshot(plan_ussel)
    response = upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_le_blanc, keep=True))
    assert response.status_code == 200
    assert "le modèle du plan d'action d'un autre bénéficiaire" in text_of(response)
    assert snapshot(plan_ussel) == before
    assert FicheAction.objects.get(beneficiaire=plan_ussel, reference="1.1").titre == (
        "Réhabilitation de l'îlot de la Halle"
    )


@pytest.mark.parametrize("forge", ["removed", "emptied", "tampered", "blank workbook"])
def test_a_workbook_without_the_plans_signed_identity_is_refused(
    client_for, cdp_ussel, plan_ussel, forge
):
    def edit(workbook):
        if forge == "removed":
            del workbook["Identité"]
        elif forge == "emptied":
            workbook["Identité"]["A1"] = None
        else:
            token = workbook["Identité"]["A1"].value
            workbook["Identité"]["A1"] = f"{plan_ussel.pk + 1}{token[token.index(':') :]}"

    if forge == "blank workbook":
        workbook = Workbook()
        workbook.active.title = "Fiches"
        workbook.active.append([c.titre for c in COLONNES_FICHES])
        workbook.active.append(["1.1", "Halle piratée", 1])
        workbook.create_sheet("Financements").append([c.titre for c in COLONNES_FINANCEMENTS])
        output = io.BytesIO()
        workbook.save(output)
        content = output.getvalue()
    else:
        content = workbook_bytes(plan_ussel, fiches=FICHES, edit=edit)
    before = snapshot(plan_ussel)
    response = upload(client_for(cdp_ussel), plan_ussel, content)
    assert "Ce classeur ne vient pas du modèle de ce plan d'action" in text_of(response)
    assert snapshot(plan_ussel) == before


def test_a_formula_is_refused_with_its_cell_never_read_as_empty(client_for, cdp_ussel, plan_ussel):
    fiches = [
        {**FICHES[1], "Coût total HT": "=1+1"},
        {"Référence": "3.3", "Titre": "Gare", "Axe": 3, "Description": '=HYPERLINK("x","y")'},
    ]
    before = snapshot(plan_ussel)
    page = text_of(upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, fiches)))
    assert (
        "Feuille Fiches, ligne 2, colonne « Coût total HT » : la cellule R2 contient une "
        "formule (« =1+1 ») : les formules ne sont pas lues, saisissez la valeur elle-même"
    ) in page
    assert "Feuille Fiches, ligne 3, colonne « Description » : la cellule D3 contient" in page
    assert snapshot(plan_ussel) == before


def test_a_formula_in_the_financing_sheet_is_refused(client_for, cdp_ussel, plan_ussel):
    financements = [{"Référence de la fiche": "1.1", "Financeur": "DSIL", "Montant": "=A1*2"}]
    before = snapshot(plan_ussel)
    content = workbook_bytes(plan_ussel, financements=financements, keep=True)
    page = text_of(upload(client_for(cdp_ussel), plan_ussel, content))
    assert "Feuille Financements, ligne" in page and "contient une formule (« =A1*2 »)" in page
    assert snapshot(plan_ussel) == before


def test_texts_over_the_web_forms_limits_are_refused(client_for, cdp_ussel, plan_ussel):
    fiches = [{**FICHES[1], "Description": "x" * 10_001, "Objectifs": "y" * 10_000}]
    before = snapshot(plan_ussel)
    page = text_of(upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, fiches)))
    assert "colonne « Description » : ce texte compte 10001 caractères : 10000 au plus" in page
    assert "Objectifs" not in page.split("Description")[-1]
    assert snapshot(plan_ussel) == before


def test_every_text_column_has_the_limit_of_its_web_form_field(plan_ussel):
    """The import reads the model's bounds: a text one character over the web form field's
    limit is refused by both."""
    plan = Plan(plan_ussel)
    forms = [(COLONNES_FICHES, FicheForm), (COLONNES_FINANCEMENTS, LigneFinancementForm)]
    for colonnes, form in forms:
        modele = form._meta.model
        for colonne in colonnes:
            if colonne.type == "texte" or colonne.champ == "reference" and form is FicheForm:
                limit = form.base_fields[colonne.champ].max_length
                assert limit, colonne.titre
                assert plan.lire(colonne, "x" * limit, modele) == "x" * limit
                with pytest.raises(ValeurInvalide):
                    plan.lire(colonne, "x" * (limit + 1), modele)


def with_blank_rows(content: bytes, first: int, count: int, cells: int = 19) -> bytes:
    """The workbook with ``count`` formatted blank rows (as Excel writes them) appended to
    its Fiches sheet from row ``first``."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml")
    letters = [get_column_letter(i) for i in range(1, cells + 1)]
    rows = "".join(
        f'<row r="{n}">' + "".join(f'<c r="{c}{n}" s="1"/>' for c in letters) + "</row>"
        for n in range(first, first + count)
    )
    xml = xml.replace(b"</sheetData>", rows.encode() + b"</sheetData>")
    return with_sheet_xml(content, "xl/worksheets/sheet1.xml", xml)


@pytest.fixture
def counted(monkeypatch):
    """How many rows openpyxl parsed, and how far the streamed pre-read went."""
    from openpyxl.worksheet._reader import WorkSheetParser

    from actions import excel

    seen = {"openpyxl_rows": 0, "mesures": []}
    parse_row = WorkSheetParser.parse_row
    etendue = excel.etendue

    def counting_parse_row(self, row):
        seen["openpyxl_rows"] += 1
        return parse_row(self, row)

    def recording_etendue(source):
        seen["mesures"].append(etendue(source))
        return seen["mesures"][-1]

    monkeypatch.setattr(WorkSheetParser, "parse_row", counting_parse_row)
    monkeypatch.setattr(excel, "etendue", recording_etendue)
    return seen


def test_a_sheet_of_formatted_blank_rows_is_refused_after_a_bounded_read(
    client_for, cdp_ussel, plan_ussel, counted
):
    from actions.excel import MAX_CELLULES_LUES

    before = snapshot(plan_ussel)
    heavy = with_blank_rows(workbook_bytes(plan_ussel, FICHES), first=4, count=30_000)

    page = text_of(upload(client_for(cdp_ussel), plan_ussel, heavy))

    assert "Une feuille de ce classeur est trop lourde (150000 cellules au plus" in page
    fiches = counted["mesures"][0]
    # Stopped at the cell limit: about 7,900 of the 30,003 rows streamed, none built by openpyxl.
    assert fiches.cellules == MAX_CELLULES_LUES + 1
    assert fiches.lignes <= MAX_CELLULES_LUES // 19 + 2
    assert counted["openpyxl_rows"] == 0  # refused before openpyxl opened the workbook
    assert snapshot(plan_ussel) == before


def test_rows_claiming_thousands_of_cells_are_refused_after_a_few(
    client_for, cdp_ussel, plan_ussel, counted
):
    wide = with_blank_rows(workbook_bytes(plan_ussel, FICHES), first=4, count=20, cells=16_384)
    page = text_of(upload(client_for(cdp_ussel), plan_ussel, wide))
    assert "Une feuille de ce classeur est trop lourde" in page
    assert counted["mesures"][0].lignes <= 13  # 3 rows of the plan, 10 of 16,384 cells
    assert counted["openpyxl_rows"] == 0


def test_formatted_blank_rows_below_the_plan_are_never_built_by_openpyxl(
    client_for, cdp_ussel, plan_ussel, counted
):
    padded = with_blank_rows(workbook_bytes(plan_ussel, FICHES), first=4, count=5_000)
    response = upload(client_for(cdp_ussel), plan_ussel, padded)
    assert "1 fiche créée, 1 mise à jour" in text_of(response)
    assert FicheAction.objects.filter(beneficiaire=plan_ussel, reference="3.2").exists()
    assert counted["mesures"][0].derniere == 3 and counted["mesures"][0].lignes == 5_003
    # The header and the two fiches, then the Financements sheet: the 5,000 rows are skipped.
    assert counted["openpyxl_rows"] <= 3 + 1 + len(FINANCEMENTS)
