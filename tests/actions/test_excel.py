import csv
import html
import io
import os
import time
from datetime import date, timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from actions.excel import lire_date, lire_montant
from actions.excel_template import template_workbook
from actions.exports import build_export, fiches_for, lignes_for, write_export, write_workbook
from actions.models import (
    Axe,
    ExportPlan,
    FicheAction,
    Financeur,
    LigneFinancement,
    ensure_axes,
)
from actions.tasks import purge_exports
from pvd.jobs import PROGRESS_SECONDS, Progress
from pvd.tasks import fail_stalled_jobs

pytestmark = pytest.mark.django_db


def url(name: str, *args, **kwargs) -> str:
    return reverse(f"actions:{name}", args=args, kwargs=kwargs)


def text_of(response) -> str:
    content = html.unescape(response.content.decode())
    return " ".join(content.replace("\u00a0", " ").replace("\u202f", " ").split())


def read_xlsx(content: bytes):
    return load_workbook(io.BytesIO(content))


# Plans and workbooks --------------------------------------------------------------------------


def fiche(beneficiaire, reference: str, axe: int = 1, **fields) -> FicheAction:
    ensure_axes(beneficiaire)
    fields.setdefault("titre", f"Action {reference}")
    return FicheAction.objects.create(
        beneficiaire=beneficiaire,
        reference=reference,
        axe=Axe.objects.get(beneficiaire=beneficiaire, numero=axe),
        **fields,
    )


def financement(fiche: FicheAction, financeur: str, montant: str, **fields) -> LigneFinancement:
    return LigneFinancement.objects.create(
        fiche=fiche, financeur=Financeur.objects.get(nom=financeur), montant=montant, **fields
    )


@pytest.fixture
def plan_ussel(ussel_la_courtine):
    """Two fiches of Ussel – La Courtine, one of them financed by DSIL and the Région."""
    halle = fiche(
        ussel_la_courtine,
        "1.1",
        titre="Réhabilitation de l'îlot de la Halle",
        cout_total=Decimal("300000"),
        date_debut_prevue=date(2024, 3, 1),
        date_fin_prevue=date(2026, 6, 30),
    )
    financement(halle, "DSIL", "150000", dispositif="DSIL 2024", statut="notifie")
    financement(halle, "Région", "60000")
    fiche(ussel_la_courtine, "2.1", axe=2, titre="Boutique à l'essai", cout_total=Decimal("40000"))
    return ussel_la_courtine


def clear(sheet) -> None:
    if sheet.max_row > 1:
        sheet.delete_rows(2, sheet.max_row)


def put(sheet, row: int, values: dict) -> None:
    columns = {cell.value: cell.column for cell in sheet[1]}
    for header, value in values.items():
        sheet.cell(row=row, column=columns[header], value=value)


def workbook_bytes(
    beneficiaire, fiches=None, financements=None, edit=None, keep: bool = False
) -> bytes:
    """The template of the plan, emptied (unless ``keep``) and filled with the given rows."""
    workbook = template_workbook(beneficiaire)
    if not keep:
        clear(workbook["Fiches"])
        clear(workbook["Financements"])
    for row, values in enumerate(fiches or [], start=2):
        put(workbook["Fiches"], row, values)
    for row, values in enumerate(financements or [], start=2):
        put(workbook["Financements"], row, values)
    if edit:
        edit(workbook)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def upload(client, beneficiaire, content: bytes, name: str = "plan.xlsx"):
    return client.post(
        url("excel-import", pk=beneficiaire.pk),
        {"fichier": SimpleUploadedFile(name, content, content_type="application/octet-stream")},
    )


FICHES = [
    {
        "Référence": "1.1",
        "Titre": "Réhabilitation de l'îlot de la Halle",
        "Axe": "1. Habitat",
        "Maître d'ouvrage (type)": "Commune",
        "Maître d'ouvrage (nom)": "Commune d'Ussel",
        "Début prévu": date(2024, 3, 1),
        "Fin prévue": "30/06/2026",
        "Maturité": "Prête",
        "Avancement": "Étude",
        "Priorité": "Haute",
        "Budget vert": "oui",
        "Coût total HT": "300 000 €",
        "Nature": "Investissement",
    },
    {
        "Référence": "3.2",
        "Titre": "Pôle d'échanges multimodal",
        "Axe": 3,
        "Coût total HT": 1200000,
    },
]
FINANCEMENTS = [
    {
        "Référence de la fiche": "1.1",
        "Financeur": "DSIL",
        "Dispositif": "DSIL 2024",
        "Montant": "120 000,50",
        "Statut": "Notifié",
        "Date de décision": "15/05/2024",
    },
    {"Référence de la fiche": "1.1", "Financeur": "Région", "Montant": 60000},
    {"Référence de la fiche": "3.2", "Financeur": "Fonds vert", "Montant": "400 000"},
]


def snapshot(beneficiaire) -> list:
    """What an import must leave alone when it fails."""
    return [
        (
            f.reference,
            f.titre,
            f.axe_id,
            f.cout_total,
            f.version,
            sorted((lf.financeur_id, lf.montant) for lf in f.financements.all()),
        )
        for f in beneficiaire.fiches.order_by("reference")
    ]


# The template ------------------------------------------------------------------------------


def test_template_has_both_sheets_lists_and_the_plan_fiches(client_for, cdp_ussel, plan_ussel):
    response = client_for(cdp_ussel).get(url("excel-template", pk=plan_ussel.pk))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "modele.xlsx" in response["Content-Disposition"]
    workbook = read_xlsx(response.content)
    assert workbook.sheetnames == [
        "Fiches",
        "Financements",
        "Indicateurs",
        "Mode d'emploi",
        "Listes",
        "Identité",
    ]
    assert workbook["Listes"].sheet_state == "hidden"
    fiches = workbook["Fiches"]
    assert [c.value for c in fiches[1]][:3] == ["Référence", "Titre", "Axe"]
    assert fiches.freeze_panes == "A2"
    assert fiches["A1"].font.bold
    assert fiches.column_dimensions["B"].width == 45
    assert [fiches.cell(row=r, column=1).value for r in (2, 3)] == ["1.1", "2.1"]
    assert fiches["C2"].value == "1. Habitat"
    assert fiches["J2"].value.date() == date(2024, 3, 1)
    assert fiches["R2"].value == 300000
    validations = {
        str(v.sqref).split(":")[0]: v.formula1 for v in fiches.data_validations.dataValidation
    }
    assert validations["C2"] == "'Listes'!$A$2:$A$7"  # the six axes of the plan
    assert set(validations) >= {"C2", "F2", "N2", "O2", "P2", "Q2", "S2"}
    listes = workbook["Listes"]
    assert [listes.cell(row=r, column=1).value for r in range(2, 8)][-1] == (
        "6. Transition écologique"
    )
    lignes = workbook["Financements"]
    assert [[c.value for c in row] for row in lignes.iter_rows(min_row=2, max_col=5)] == [
        ["1.1", "DSIL", "DSIL 2024", 150000, "Notifié"],
        ["1.1", "Région", None, 60000, "Prévu"],
    ]
    financeurs = {str(v.sqref).split(":")[0] for v in lignes.data_validations.dataValidation}
    assert financeurs == {"B2", "E2"}
    assert "Mode d'emploi" in workbook.sheetnames
    assert "rien n'est importé" in " ".join(
        str(c.value) for c in workbook["Mode d'emploi"]["A"] if c.value
    )


def test_template_of_a_new_plan_offers_the_usual_axes_and_writes_nothing(
    client_for, cdp_ussel, ussel_la_courtine
):
    response = client_for(cdp_ussel).get(url("excel-template", pk=ussel_la_courtine.pk))

    assert response.status_code == 200
    assert ussel_la_courtine.axes.count() == 0  # a GET writes nothing; the import starts it
    workbook = read_xlsx(response.content)
    assert workbook["Fiches"].max_row == 1
    axes = [c.value for c in workbook["Listes"]["A"][1:] if c.value]
    assert axes[:2] == ["1. Habitat", "2. Développement économique et commercial"]
    assert len(axes) == 6


# Importing a good workbook ---------------------------------------------------------------------


def test_good_workbook_creates_then_a_reimport_updates_without_duplicates(
    client_for, cdp_ussel, ussel_la_courtine
):
    client = client_for(cdp_ussel)

    response = upload(
        client, ussel_la_courtine, workbook_bytes(ussel_la_courtine, FICHES, FINANCEMENTS)
    )

    assert response.status_code == 200
    assert "2 fiches créées, 0 mise à jour, 0 inchangée" in text_of(response)
    halle = FicheAction.objects.get(beneficiaire=ussel_la_courtine, reference="1.1")
    assert (halle.axe.numero, halle.cout_total, halle.version) == (1, Decimal("300000"), 1)
    assert (halle.maturite, halle.avancement, halle.priorite) == ("prete", "etude", "1")
    assert halle.budget_vert and halle.maitre_ouvrage_type == "commune"
    assert (halle.date_debut_prevue, halle.date_fin_prevue) == (date(2024, 3, 1), date(2026, 6, 30))
    assert halle.updated_by == cdp_ussel
    dsil = halle.financements.get(financeur__nom="DSIL")
    assert (dsil.montant, dsil.statut, dsil.date_decision) == (
        Decimal("120000.50"),
        "notifie",
        date(2024, 5, 15),
    )
    pole = FicheAction.objects.get(beneficiaire=ussel_la_courtine, reference="3.2")
    assert (pole.axe.numero, pole.maturite, pole.priorite) == (3, "idee", "2")

    # Export → edit one amount → re-import: the fiche is updated, nothing is duplicated.
    template = client.get(url("excel-template", pk=ussel_la_courtine.pk)).content
    workbook = load_workbook(io.BytesIO(template))
    lignes = workbook["Financements"]
    row = next(r for r in lignes.iter_rows(min_row=2) if r[1].value == "Région")
    row[3].value = 80000
    output = io.BytesIO()
    workbook.save(output)

    response = upload(client, ussel_la_courtine, output.getvalue())

    assert "0 fiche créée, 1 mise à jour, 1 inchangée" in text_of(response)
    assert FicheAction.objects.filter(beneficiaire=ussel_la_courtine).count() == 2
    halle.refresh_from_db()
    assert halle.version == 2
    assert sorted(halle.financements.values_list("financeur__nom", "montant")) == [
        ("DSIL", Decimal("120000.50")),
        ("Région", Decimal("80000.00")),
    ]
    assert FicheAction.objects.get(pk=pole.pk).version == 1


def test_reimporting_the_template_as_is_changes_nothing(client_for, cdp_ussel, plan_ussel):
    client = client_for(cdp_ussel)
    before = snapshot(plan_ussel)

    response = upload(
        client, plan_ussel, client.get(url("excel-template", pk=plan_ussel.pk)).content
    )

    assert "0 fiche créée, 0 mise à jour, 2 inchangées" in text_of(response)
    assert snapshot(plan_ussel) == before


def test_fiches_absent_from_the_workbook_are_left_untouched_and_listed(
    client_for, cdp_ussel, plan_ussel
):
    rows = [{"Référence": "2.1", "Titre": "Boutique à l'essai (2e saison)", "Axe": 2}]

    response = upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, rows))

    text = text_of(response)
    assert "1 mise à jour" in text
    assert "Fiches du plan absentes du classeur (laissées telles quelles)" in text
    assert [str(f) for f in response.context["bilan"].absentes] == [
        "1.1 – Réhabilitation de l'îlot de la Halle"
    ]
    halle = FicheAction.objects.get(beneficiaire=plan_ussel, reference="1.1")
    assert (halle.version, halle.financements.count()) == (1, 2)
    boutique = FicheAction.objects.get(beneficiaire=plan_ussel, reference="2.1")
    assert (boutique.titre, boutique.version, boutique.updated_by) == (
        "Boutique à l'essai (2e saison)",
        2,
        cdp_ussel,
    )


def test_financing_rows_alone_replace_the_plan_of_an_existing_fiche(
    client_for, cdp_ussel, plan_ussel
):
    rows = [{"Référence de la fiche": "1.1", "Financeur": "Fonds vert", "Montant": 90000}]

    upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, [], rows))

    halle = FicheAction.objects.get(beneficiaire=plan_ussel, reference="1.1")
    assert list(halle.financements.values_list("financeur__nom", "montant")) == [
        ("Fonds vert", Decimal("90000.00"))
    ]
    assert halle.version == 2


# Importing a bad workbook ----------------------------------------------------------------------


def test_every_error_is_listed_with_sheet_row_and_column_and_nothing_is_imported(
    client_for, cdp_ussel, plan_ussel
):
    fiches = [
        {"Référence": "1.1", "Titre": "Halle", "Axe": "Mobilité", "Coût total HT": 300000},  # 2
        {"Référence": "4.1", "Titre": "Médiathèque", "Axe": 5, "Coût total HT": "beaucoup"},  # 3
        {"Référence": "4.2", "Titre": "Voirie", "Axe": 3, "Coût total HT": -5000},  # 4
        {"Référence": "4.3", "Titre": "Gare", "Axe": 3, "Début prévu": "31/02/2025"},  # 5
        {
            "Référence": "4.4",
            "Titre": "Parc",
            "Axe": 4,
            "Début prévu": "01/06/2025",
            "Fin prévue": date(2025, 1, 1),
        },  # 6
        {"Référence": "4.5", "Titre": "Friche", "Axe": 1, "Coût total HT": 300000},  # 7
        {"Référence": "4.2", "Titre": "Voirie bis", "Axe": 3},  # 8
        {"Titre": "Sans référence", "Axe": 1},  # 9
        {"Référence": "4.6", "Axe": 1},  # 10
        {"Référence": "4.7", "Titre": "Sans axe"},  # 11
    ]
    financements = [
        {"Référence de la fiche": "4.5", "Financeur": "DSIL", "Montant": 250000},  # 2
        {"Référence de la fiche": "4.5", "Financeur": "Région", "Montant": "100 000"},  # 3
        {"Référence de la fiche": "1.1", "Financeur": "Mécène", "Montant": 1000},  # 4
        {"Référence de la fiche": "9.9", "Financeur": "DSIL", "Montant": 1000},  # 5
        {"Référence de la fiche": "2.1", "Financeur": "DETR", "Montant": "dix mille"},  # 6
        {"Référence de la fiche": "2.1", "Financeur": "DETR", "Montant": -10},  # 7
        {
            "Référence de la fiche": "2.1",
            "Financeur": "DETR",
            "Montant": 10,
            "Date de décision": "hier",
        },  # 8
    ]
    before = snapshot(plan_ussel)

    response = upload(
        client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, fiches, financements)
    )

    text = text_of(response)
    expected = [
        "Feuille Fiches, ligne 2, colonne « Axe » : axe inconnu « Mobilité » (axes du plan : "
        "1. Habitat, 2. Développement économique et commercial, 3. Mobilité et connexions, "
        "4. Formes urbaines, espaces publics et patrimoine, 5. Équipements et services publics, "
        "6. Transition écologique)",
        "Feuille Fiches, ligne 3, colonne « Coût total HT » : « beaucoup » n'est pas un montant",
        "Feuille Fiches, ligne 4, colonne « Coût total HT » : un montant ne peut pas être négatif",
        "Feuille Fiches, ligne 5, colonne « Début prévu » : « 31/02/2025 » n'est pas une date "
        "(JJ/MM/AAAA)",
        "Feuille Fiches, ligne 6, colonne « Fin prévue » : la fin prévue (01/01/2025) précède "
        "le début prévu (01/06/2025)",
        "Feuille Fiches, ligne 7, colonne « Coût total HT » : le plan de financement "
        "(350 000 €) dépasse le coût (300 000 €) de la fiche",
        "Feuille Fiches, ligne 8, colonne « Référence » : référence « 4.2 » en double "
        "(déjà ligne 4)",
        "Feuille Fiches, ligne 9, colonne « Référence » : valeur obligatoire",
        "Feuille Fiches, ligne 10, colonne « Titre » : valeur obligatoire",
        "Feuille Fiches, ligne 11, colonne « Axe » : valeur obligatoire",
        "Feuille Financements, ligne 4, colonne « Financeur » : financeur inconnu « Mécène » "
        "(financeurs du catalogue : DETR, DSIL,",
        "Feuille Financements, ligne 5, colonne « Référence de la fiche » : la fiche « 9.9 » "
        "n'est ni dans la feuille Fiches ni dans le plan",
        "Feuille Financements, ligne 6, colonne « Montant » : « dix mille » n'est pas un montant",
        "Feuille Financements, ligne 7, colonne « Montant » : un montant ne peut pas être négatif",
        "Feuille Financements, ligne 8, colonne « Date de décision » : « hier » n'est pas une "
        "date (JJ/MM/AAAA)",
    ]
    for message in expected:
        assert message in text
    assert "Rien n’a été importé : le classeur comporte 15 erreurs" in text
    assert len(response.context["erreurs"]) == 15
    assert snapshot(plan_ussel) == before
    assert not FicheAction.objects.filter(reference__startswith="4.").exists()


@pytest.mark.parametrize(
    "fiches, financements, message",
    [
        (
            [{"Référence": "1.1", "Titre": "Halle", "Axe": 1, "Coût total HT": 300000}],
            [
                {"Référence de la fiche": "1.1", "Financeur": "DSIL", "Montant": 200000},
                {"Référence de la fiche": "1.1", "Financeur": "Anah", "Montant": 150000},
            ],
            "Feuille Fiches, ligne 2, colonne « Coût total HT » : le plan de financement "
            "(350 000 €) dépasse le coût (300 000 €)",
        ),
        (
            [],
            [{"Référence de la fiche": "2.1", "Financeur": "DETR", "Montant": "40 000,01"}],
            "Feuille Financements, ligne 2, colonne « Montant » : le plan de financement "
            "(40 000,01 €) dépasse le coût (40 000 €) de la fiche « 2.1 »",
        ),
        (
            [
                {
                    "Référence": "2.1",
                    "Titre": "Boutique",
                    "Axe": 2,
                    "Fin réelle": "01/01/2020",
                    "Début réel": "02/01/2020",
                }
            ],  # fmt: skip
            [],
            "Feuille Fiches, ligne 2, colonne « Fin réelle » : la fin réelle (01/01/2020) précède "
            "le début réel (02/01/2020)",
        ),
        (
            [{"Référence": "2.1", "Titre": "Boutique", "Axe": 2, "Priorité": "urgente"}],
            [],
            "Feuille Fiches, ligne 2, colonne « Priorité » : valeur inconnue « urgente » "
            "(valeurs possibles : Haute, Moyenne, Basse)",
        ),
    ],
)
def test_one_bad_row_imports_nothing(
    client_for, cdp_ussel, plan_ussel, fiches, financements, message
):
    before = snapshot(plan_ussel)

    response = upload(
        client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, fiches, financements)
    )

    assert message in text_of(response)
    assert snapshot(plan_ussel) == before


def test_a_missing_sheet_or_column_is_reported(client_for, cdp_ussel, plan_ussel):
    def damage(workbook):
        del workbook["Financements"]
        workbook["Fiches"].delete_cols(3)  # Axe

    response = upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, edit=damage))

    text = text_of(response)
    assert (
        "Feuille Fiches, ligne 1, colonne « Axe » : colonne absente de la ligne d'en-tête" in text
    )
    assert "Feuille Financements : feuille absente du classeur" in text


@pytest.mark.parametrize(
    "content, message",
    [
        (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "n'est pas un classeur Excel"),
        (b"PK\x03\x04 not really a zip", "n'est pas un classeur Excel"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "Excel 97-2003 (.xls)"),
    ],
    ids=["pdf", "broken-zip", "xls"],
)
def test_a_file_that_is_not_an_xlsx_is_refused(client_for, cdp_ussel, plan_ussel, content, message):
    before = snapshot(plan_ussel)

    response = upload(client_for(cdp_ussel), plan_ussel, content, name="plan.xlsx")

    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert snapshot(plan_ussel) == before


def test_a_zip_that_is_not_a_workbook_is_refused(client_for, cdp_ussel, plan_ussel):
    import zipfile

    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr("document.txt", "bonjour")

    response = upload(client_for(cdp_ussel), plan_ussel, output.getvalue())

    assert "n'est pas un classeur Excel" in html.unescape(response.content.decode())


def test_a_damaged_sheet_is_reported_and_nothing_imported(client_for, cdp_ussel, plan_ussel):
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(workbook_bytes(plan_ussel, FICHES)))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content[: len(content) // 2]  # cut in the middle of a row
            archive.writestr(item, content)
    before = snapshot(plan_ussel)

    response = upload(client_for(cdp_ussel), plan_ussel, output.getvalue())

    assert "Feuille Fiches : feuille illisible" in text_of(response)
    assert snapshot(plan_ussel) == before


def test_a_file_over_10_mb_is_refused(client_for, cdp_ussel, plan_ussel):
    response = upload(client_for(cdp_ussel), plan_ussel, b"PK\x03\x04" + b"0" * (10 * 2**20))

    assert "la limite est de 10,0" in html.unescape(response.content.decode())


@pytest.mark.parametrize(
    "value, expected",
    [
        ("120 000,50", Decimal("120000.50")),
        ("120\u202f000 €", Decimal("120000")),
        ("1.250.000", Decimal("1250000")),
        ("1 250 000,5 EUR", Decimal("1250000.50")),
        (12.345, Decimal("12.35")),
        (300000, Decimal("300000")),
        ("", None),
    ],
)
def test_amounts_written_the_french_way_are_read(value, expected):
    assert lire_montant(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("15/05/2024", date(2024, 5, 15)),
        ("5/6/2024", date(2024, 6, 5)),
        ("2024-05-15", date(2024, 5, 15)),
        (45427, date(2024, 5, 15)),  # an Excel serial number shown as a number
        (None, None),
    ],
)
def test_dates_are_read_from_excel_or_text(value, expected):
    assert lire_date(value) == expected


# Who may import --------------------------------------------------------------------------------


def test_chef_de_projet_imports_for_its_plan(client_for, cdp_ussel, ussel_la_courtine):
    client = client_for(cdp_ussel)

    assert client.get(url("excel-import", pk=ussel_la_courtine.pk)).status_code == 200
    response = upload(client, ussel_la_courtine, workbook_bytes(ussel_la_courtine, FICHES[1:]))

    assert "1 fiche créée" in text_of(response)


def test_elu_may_read_but_not_import(client_for, elu_ussel, plan_ussel):
    client = client_for(elu_ussel)

    page = client.get(url("excel", pk=plan_ussel.pk))
    assert page.status_code == 200
    assert url("excel-import", pk=plan_ussel.pk) not in page.content.decode()
    assert client.get(url("excel-template", pk=plan_ussel.pk)).status_code == 200
    assert client.get(url("excel-import", pk=plan_ussel.pk)).status_code == 403
    before = snapshot(plan_ussel)
    assert upload(client, plan_ussel, workbook_bytes(plan_ussel, FICHES)).status_code == 403
    assert snapshot(plan_ussel) == before


def test_other_departement_gets_404(client_for, prefecture_36, plan_ussel):
    client = client_for(prefecture_36)

    for name in ("excel", "excel-template", "excel-import"):
        assert client.get(url(name, pk=plan_ussel.pk)).status_code == 404
    assert client.get(url("export", pk=plan_ussel.pk, format="csv")).status_code == 404
    assert upload(client, plan_ussel, workbook_bytes(plan_ussel, FICHES)).status_code == 404


def test_excel_page_offers_template_exports_and_upload_to_editors(
    client_for, cdp_ussel, plan_ussel
):
    response = client_for(cdp_ussel).get(url("excel", pk=plan_ussel.pk))

    content = response.content.decode()
    assert "Importer / exporter le plan d’action" in content
    for href in (
        url("excel-template", pk=plan_ussel.pk),
        url("excel-import", pk=plan_ussel.pk),
        url("export", pk=plan_ussel.pk, format="csv"),
        url("export", pk=plan_ussel.pk, format="xlsx"),
    ):
        assert href in content
    assert 'type="file"' in content


# Exports ----------------------------------------------------------------------------------------


@pytest.fixture
def plan_le_blanc(le_blanc):
    friche = fiche(le_blanc, "1.1", titre="Friche de l'ancienne usine", cout_total=Decimal("1000"))
    financement(friche, "Fonds friches", "700")
    return le_blanc


def csv_rows(response) -> list[list[str]]:
    content = b"".join(response.streaming_content).decode("utf-8")
    assert content.startswith("\ufeff")
    return list(csv.reader(io.StringIO(content[1:]), delimiter=";"))


def test_plan_csv_export_has_one_row_per_fiche_with_its_financing(
    client_for, elu_ussel, plan_ussel
):
    response = client_for(elu_ussel).get(url("export", pk=plan_ussel.pk, format="csv"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = csv_rows(response)
    header = rows[0]
    assert header[:6] == ["Bénéficiaire", "Code département", "Département", "Référence",
                          "Titre", "Axe"]  # fmt: skip
    halle = dict(zip(header, rows[1], strict=True))
    assert halle["Référence"] == "1.1"
    assert halle["Axe"] == "1. Habitat"
    assert halle["Code département"] == "19"
    assert halle["Début prévu"] == "2024-03-01"
    assert (halle["Coût total HT (€)"], halle["Total financé (€)"]) == ("300000,00", "210000,00")
    assert halle["Reste à financer (€)"] == "90000,00"
    assert dict(zip(header, rows[2], strict=True))["Total financé (€)"] == "0,00"
    assert len(rows) == 3


def test_plan_xlsx_export_has_a_sheet_of_financing_lines(client_for, cdp_ussel, plan_ussel):
    response = client_for(cdp_ussel).get(url("export", pk=plan_ussel.pk, format="xlsx"))

    workbook = read_xlsx(b"".join(response.streaming_content))
    assert workbook.sheetnames == ["Fiches action", "Financements"]
    assert workbook["Fiches action"].max_row == 3
    lignes = list(workbook["Financements"].iter_rows(min_row=2, values_only=True))
    assert [(r[2], r[4], r[6], r[7]) for r in lignes] == [
        ("1.1", "DSIL", 150000, 50),
        ("1.1", "Région", 60000, 20),
    ]


def test_departement_csv_export_is_scoped_to_the_prefecture(
    client_for, prefecture_19, plan_ussel, plan_le_blanc
):
    client = client_for(prefecture_19)

    response = client.get(url("export-departement"), {"departement": "19", "format": "csv"})

    rows = csv_rows(response)
    assert {(r[0], r[3]) for r in rows[1:]} == {
        ("Ussel – La Courtine", "1.1"),
        ("Ussel – La Courtine", "2.1"),
    }
    assert "Le Blanc" not in str(rows)
    assert (
        client.get(url("export-departement"), {"departement": "36", "format": "csv"}).status_code
        == 403
    )
    assert client.get(url("export-national-csv")).status_code == 403
    assert client.post(url("export-national")).status_code == 403


def test_national_csv_export_has_every_fiche_in_a_constant_number_of_queries(
    client_for, national, plan_ussel, plan_le_blanc
):
    client = client_for(national)

    def export() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as queries:
            rows = csv_rows(client.get(url("export-national-csv")))
        return len(queries), rows

    export()  # the first request computes what the next ones read from the cache (perimeter)
    count, rows = export()
    assert [r[0] for r in rows[1:]] == ["Ussel – La Courtine"] * 2 + ["Le Blanc"]
    for n in range(20):
        fiche(plan_le_blanc, f"2.{n}", axe=2, cout_total=Decimal("10"))
    assert export()[0] == count
    assert len(export()[1]) == 24


def test_plan_exports_are_available_to_readers_only(client_for, cdp_ussel, plan_le_blanc):
    client = client_for(cdp_ussel)

    assert client.get(url("export", pk=plan_le_blanc.pk, format="xlsx")).status_code == 404
    assert client.get(url("export-national-csv")).status_code == 403
    assert client.get(url("export-departement"), {"departement": "19"}).status_code == 403


# Exports built by a task -------------------------------------------------------------------------


def test_national_export_runs_as_a_task_and_produces_the_workbook(
    client_for, national, plan_ussel, plan_le_blanc, django_capture_on_commit_callbacks
):
    client = client_for(national)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url("export-national"))

    assert len(callbacks) == 1
    export = ExportPlan.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("export-status", pk=export.pk)
    assert (export.statut, export.perimetre, export.requested_by) == ("pret", "national", national)
    assert (export.lignes_faites, export.lignes_total) == (3 + 3, 3 + 3)
    download = client.get(url("export-download", pk=export.pk))
    assert download.status_code == 200
    assert "fiches-action-france" in download["Content-Disposition"]
    workbook = read_xlsx(b"".join(download.streaming_content))
    assert workbook["Fiches action"].max_row == 1 + 3
    assert workbook["Financements"].max_row == 1 + 3


def test_export_is_queued_only_after_commit(
    client_for, national, plan_ussel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client_for(national).post(url("export-national"))

    assert len(callbacks) == 1
    assert ExportPlan.objects.get().statut == ExportPlan.Statut.EN_COURS


class FakeClock:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_progress_is_written_every_few_seconds_not_every_so_many_rows(national, ussel_la_courtine):
    ensure_axes(ussel_la_courtine)
    axe = ussel_la_courtine.axes.get(numero=1)
    FicheAction.objects.bulk_create(
        FicheAction(beneficiaire=ussel_la_courtine, reference=f"1.{n}", titre="x", axe=axe)
        for n in range(1200)
    )
    # 1/64 s a row: 1,200 rows take 18.75 s, so the progress is written every 128 rows
    # (2 s), 9 times, not once per row nor every so many rows whatever their speed.
    seen = []
    written = write_workbook(
        fiches_for(national),
        lignes_for(national),
        io.BytesIO(),
        progress=Progress(seen.append, every=PROGRESS_SECONDS, clock=FakeClock(1 / 64)),
    )
    assert PROGRESS_SECONDS == 2.0
    assert written == 1200
    assert seen == [128 * k for k in range(1, 10)]

    # A fast machine (no time passes): not one progress write, however many rows.
    export = ExportPlan.objects.create(perimetre="national", requested_by=national)
    with CaptureQueriesContext(connection) as queries:
        ExportPlan.run(export.pk, partial(write_export, clock=FakeClock(0)), failed="{error}")
    progress_writes = [q["sql"] for q in queries if q["sql"].endswith("\"statut\" = 'en_cours')")]
    # lignes_faites = 0 at the start only (the end is stored with the file).
    assert len(progress_writes) == 1, progress_writes
    export.refresh_from_db()
    assert (export.statut, export.lignes_faites, export.lignes_total) == ("pret", 1200, 1200)


def test_progress_writes_are_bounded_by_time_whatever_the_number_of_rows():
    for rows in (1_000, 100_000):
        seen = []
        progress = Progress(seen.append, every=2.0, clock=FakeClock(30.0 / rows))
        for done in range(1, rows + 1):
            progress(done)
        # 30 s of work: one write each 2 s, at 1,000 rows as at 100,000.
        assert len(seen) in (14, 15), (rows, len(seen))
        assert seen == sorted(seen)


def test_building_twice_keeps_one_file(national, plan_ussel):
    export = ExportPlan.objects.create(perimetre="national", requested_by=national)

    build_export(export.pk)
    build_export(export.pk)

    export.refresh_from_db()
    assert export.statut == "pret"
    _, files = default_storage.listdir("exports/actions")
    assert [f for f in files if f.endswith(f"-{export.pk}.xlsx")] == [
        export.fichier.name.rsplit("/", 1)[-1]
    ]


def test_a_failing_export_says_so(national, plan_ussel, monkeypatch):
    export = ExportPlan.objects.create(perimetre="national", requested_by=national)

    def broken(*args, **kwargs):
        raise ValueError("classeur illisible")

    monkeypatch.setattr("actions.exports.write_workbook", broken)
    build_export(export.pk)

    export.refresh_from_db()
    assert export.statut == "echec"
    assert "classeur illisible" in export.erreur


def test_prefecture_prepares_its_departement_only(
    client_for, prefecture_19, plan_ussel, plan_le_blanc, django_capture_on_commit_callbacks
):
    client = client_for(prefecture_19)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("export-departement"), {"departement": "19"})

    export = ExportPlan.objects.get()
    assert response["Location"] == url("export-status", pk=export.pk)
    assert (export.perimetre, export.departement_id, export.statut) == ("departement", "19", "pret")
    with export.fichier.open("rb") as handle:
        workbook = read_xlsx(handle.read())
    assert [r[0] for r in workbook["Fiches action"].iter_rows(min_row=2, values_only=True)] == [
        "Ussel – La Courtine"
    ] * 2
    assert client.post(url("export-departement"), {"departement": "36"}).status_code == 403
    assert ExportPlan.objects.count() == 1


def test_progress_page_polls_while_in_progress_then_links_the_file(client_for, national):
    client = client_for(national)
    export = ExportPlan.objects.create(
        perimetre="national", requested_by=national, lignes_faites=250, lignes_total=1000
    )

    page = text_of(client.get(url("export-status", pk=export.pk)))
    fragment = text_of(client.get(url("export-progress", pk=export.pk)))

    for content in (page, fragment):
        assert f'data-hx-get="{url("export-progress", pk=export.pk)}"' in content
        assert 'data-hx-trigger="every 2s"' in content
        assert '<progress max="100"' in content and 'value="25"' in content
        assert "250 lignes écrites sur 1 000" in content
        assert url("export-download", pk=export.pk) not in content
    assert client.get(url("export-download", pk=export.pk)).status_code == 404

    export.fichier.save("fini.xlsx", ContentFile(b"PK\x03\x04 fini"), save=False)
    export.statut = ExportPlan.Statut.PRET
    export.lignes_faites = 1000
    export.finished_at = timezone.now()
    export.save()

    fragment = client.get(url("export-progress", pk=export.pk)).content.decode()
    assert "hx-trigger" not in fragment
    assert url("export-download", pk=export.pk) in fragment
    download = client.get(url("export-download", pk=export.pk))
    assert b"".join(download.streaming_content) == b"PK\x03\x04 fini"


def test_only_the_requester_or_national_staff_see_an_export(
    client_for, prefecture_19, prefecture_36, partenaire, national
):
    export = ExportPlan.objects.create(
        perimetre="departement", departement_id="19", requested_by=prefecture_19
    )
    export.fichier.save("x.xlsx", ContentFile(b"PK\x03\x04"), save=False)
    export.statut = ExportPlan.Statut.PRET
    export.save()

    assert client_for(prefecture_19).get(url("export-download", pk=export.pk)).status_code == 200
    assert client_for(national).get(url("export-download", pk=export.pk)).status_code == 200
    for other in (prefecture_36, partenaire):
        for name in ("export-status", "export-progress", "export-download"):
            assert client_for(other).get(url(name, pk=export.pk)).status_code == 404


def test_national_partners_may_export_nationally_but_chefs_de_projet_may_not(
    client_for, partenaire, cdp_ussel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(partenaire).post(url("export-national")).status_code == 302
    assert ExportPlan.objects.get().requested_by == partenaire
    assert client_for(cdp_ussel).post(url("export-national")).status_code == 403


def test_exports_page_lists_my_exports_and_offers_what_i_may_run(
    client_for, prefecture_19, national
):
    mine = ExportPlan.objects.create(
        perimetre="departement", departement_id="19", requested_by=prefecture_19
    )
    ExportPlan.objects.create(perimetre="national", requested_by=national)

    response = client_for(prefecture_19).get(url("exports"))

    content = response.content.decode()
    assert url("export-status", pk=mine.pk) in content
    assert "France entière" not in content  # neither the national export nor its button
    assert response.context["exports"][0] == mine and len(response.context["exports"]) == 1
    assert [d.code for d in response.context["departements"]] == ["19"]
    assert url("export-national") not in content


def test_old_exports_are_purged_and_stalled_ones_failed(national):
    old = ExportPlan.objects.create(perimetre="national", requested_by=national, statut="pret")
    old.fichier.save("vieux.xlsx", ContentFile(b"x"))
    stalled = ExportPlan.objects.create(perimetre="national", requested_by=national)
    recent = ExportPlan.objects.create(perimetre="national", requested_by=national)
    ExportPlan.objects.filter(pk=old.pk).update(requested_at=timezone.now() - timedelta(days=8))
    ExportPlan.objects.filter(pk=stalled.pk).update(
        requested_at=timezone.now() - timedelta(hours=1)
    )
    name = old.fichier.name

    assert purge_exports() == 1
    assert fail_stalled_jobs() == 1

    assert not ExportPlan.objects.filter(pk=old.pk).exists()
    assert not default_storage.exists(name)
    assert ExportPlan.objects.get(pk=stalled.pk).statut == "echec"
    assert ExportPlan.objects.get(pk=recent.pk).statut == "en_cours"


# Through a real worker ------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
@pytest.mark.django_db(transaction=True)
def test_national_export_goes_through_a_real_worker_and_redis(
    client_for, national, plan_ussel, plan_le_blanc
):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from pvd.celery import app

    def close_worker_connection(**kwargs):
        # Runs in the worker's thread: its connection must not outlive the test database.
        connection.close()

    task_postrun.connect(close_worker_connection, weak=False)
    app.conf.task_always_eager = False
    try:
        with start_worker(app, perform_ping_check=False, loglevel="WARNING"):
            assert app.conf.broker_url.startswith("redis://")
            response = client_for(national).post(url("export-national"))
            export = ExportPlan.objects.get()
            assert response["Location"] == url("export-status", pk=export.pk)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                export.refresh_from_db()
                if export.statut != ExportPlan.Statut.EN_COURS:
                    break
                time.sleep(0.2)
    finally:
        app.conf.task_always_eager = True
        task_postrun.disconnect(close_worker_connection)

    assert export.statut == ExportPlan.Statut.PRET, export.erreur
    # The worker thread wrote to this process's InMemoryStorage.
    with export.fichier.open("rb") as handle:
        workbook = read_xlsx(handle.read())
    assert workbook["Fiches action"].max_row == 1 + 3
    assert workbook["Financements"].max_row == 1 + 3
    assert export.lignes_faites == export.lignes_total == 6


# Indicators, communes, secteur and jalons both ways ---------------------------------------------


def test_round_trip_keeps_indicators_communes_secteur_and_jalons(client_for, cdp_ussel, plan_ussel):
    from actions.models import Indicateur, Mesure

    halle = plan_ussel.fiches.get(reference="1.1")
    halle.secteur = "Centre-bourg"
    halle.jalons = "Étude 2024 ; travaux 2025"
    halle.save()
    halle.communes.set(["19275", "23067"])
    logements = Indicateur.objects.create(
        fiche=halle,
        type="realisation",
        libelle="Logements rénovés",
        unite="logements",
        cible=Decimal("25"),
        frequence="annuelle",
    )
    Mesure.objects.create(indicateur=logements, valeur=Decimal("4"), date=date(2025, 1, 31))
    client = client_for(cdp_ussel)
    before = snapshot(plan_ussel)

    template = client.get(url("excel-template", pk=plan_ussel.pk)).content
    workbook = read_xlsx(template)
    fiches = {c.value: c.column for c in workbook["Fiches"][1]}
    assert workbook["Fiches"].cell(row=2, column=fiches["Secteur d'intervention"]).value == (
        "Centre-bourg"
    )
    assert workbook["Fiches"].cell(row=2, column=fiches["Communes concernées"]).value == (
        "La Courtine (23067) ; Ussel (19275)"
    )
    assert [c.value for c in workbook["Indicateurs"][2]] == [
        "1.1",
        "Logements rénovés",
        "Réalisation",
        "logements",
        25,
        "Annuelle",
    ]
    # As is: nothing changes.
    response = upload(client, plan_ussel, template)
    assert "0 fiche créée, 0 mise à jour, 2 inchangées" in text_of(response)
    assert snapshot(plan_ussel) == before

    # Edited: a new target, a new indicator, one commune less, new jalons, a secteur on 2.1.
    put(workbook["Indicateurs"], 2, {"Cible": "30"})
    put(
        workbook["Indicateurs"],
        3,
        {
            "Référence de la fiche": "2.1",
            "Indicateur": "Boutiques ouvertes",
            "Type": "Résultat",
            "Unité": "boutiques",
            "Cible": "3",
        },
    )
    put(workbook["Fiches"], 2, {"Communes concernées": "Ussel", "Jalons": "Travaux 2026"})
    put(workbook["Fiches"], 3, {"Secteur d'intervention": "Rue commerçante"})
    output = io.BytesIO()
    workbook.save(output)
    response = upload(client, plan_ussel, output.getvalue())

    assert "0 fiche créée, 2 mises à jour, 0 inchangée" in text_of(response)
    halle.refresh_from_db()
    assert list(halle.communes.values_list("code", flat=True)) == ["19275"]
    assert (halle.secteur, halle.jalons) == ("Centre-bourg", "Travaux 2026")
    logements.refresh_from_db()
    assert (logements.cible, logements.frequence) == (Decimal("30"), "annuelle")
    assert logements.mesures.count() == 1  # updated in place: its measures are kept
    boutique = plan_ussel.fiches.get(reference="2.1")
    assert boutique.secteur == "Rue commerçante"
    assert boutique.indicateurs.get().libelle == "Boutiques ouvertes"

    # Exported again: what was imported comes back.
    again = read_xlsx(client.get(url("excel-template", pk=plan_ussel.pk)).content)
    assert [r[1].value for r in again["Indicateurs"].iter_rows(min_row=2)] == [
        "Logements rénovés",
        "Boutiques ouvertes",
    ]


def test_bad_indicators_and_communes_are_refused_in_french_and_nothing_is_imported(
    client_for, cdp_ussel, plan_ussel
):
    before = snapshot(plan_ussel)
    fiches = [{**FICHES[1], "Communes concernées": "Ussel ; Châteauroux"}]

    def edit(workbook):
        rows = [
            {
                "Référence de la fiche": "9.9",
                "Indicateur": "Logements",
                "Type": "Réalisation",
                "Unité": "logements",
            },
            {
                "Référence de la fiche": "1.1",
                "Indicateur": "Logements",
                "Type": "Souvent",
                "Unité": "logements",
                "Cible": "beaucoup",
            },
            {
                "Référence de la fiche": "1.1",
                "Indicateur": "Commerces",
                "Type": "Résultat",
                "Unité": "",
                "Cible": "-3",
            },
            {
                "Référence de la fiche": "1.1",
                "Indicateur": "logements",
                "Type": "Résultat",
                "Unité": "logements",
            },
        ]
        for row, values in enumerate(rows, start=2):
            put(workbook["Indicateurs"], row, values)

    page = text_of(
        upload(client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, fiches, edit=edit))
    )

    assert "Rien n’a été importé" in page
    assert (
        "Feuille Fiches, ligne 2, colonne « Communes concernées » : commune inconnue "
        "« Châteauroux » (communes du bénéficiaire : La Courtine, Ussel)"
    ) in page
    assert (
        "Feuille Indicateurs, ligne 2, colonne « Référence de la fiche » : la fiche « 9.9 » "
        "n'est ni dans la feuille Fiches ni dans le plan"
    ) in page
    assert "Feuille Indicateurs, ligne 3, colonne « Type » : valeur inconnue « Souvent »" in page
    assert "ligne 3, colonne « Cible » : « beaucoup » n'est pas un nombre" in page
    assert "ligne 4, colonne « Unité » : valeur obligatoire" in page
    # A negative target is allowed, as in the web form (pvd/bounds.py: nombre_plafonne).
    assert "« Cible » : nombre négatif" not in page
    assert "ligne 5, colonne « Indicateur » : indicateur « logements » en double" in page
    assert snapshot(plan_ussel) == before
    assert not plan_ussel.fiches.filter(indicateurs__isnull=False).exists()


def test_a_workbook_from_the_older_template_without_indicators_still_imports(
    client_for, cdp_ussel, plan_ussel
):
    def older(workbook):
        del workbook["Indicateurs"]

    response = upload(
        client_for(cdp_ussel), plan_ussel, workbook_bytes(plan_ussel, keep=True, edit=older)
    )
    assert "0 fiche créée, 0 mise à jour, 2 inchangées" in text_of(response)


def test_an_empty_plan_offers_its_editor_to_import_the_existing_spreadsheet(
    client_for, cdp_ussel, elu_ussel, ussel_la_courtine
):
    page = text_of(client_for(cdp_ussel).get(url("plan", pk=ussel_la_courtine.pk)))
    assert "Commencer le plan d’action" in page
    assert url("excel-template", pk=ussel_la_courtine.pk) in page
    assert url("excel-import", pk=ussel_la_courtine.pk) in page
    assert "au moins sa référence, son titre et son axe" in page  # what to fill
    assert "<td>Réhabilitation de l’îlot de la Halle</td> <td>1. Habitat</td> <td>300 000</td>" in (
        page
    )  # an example
    assert "0 €" not in page and "0 fiche" not in page
    # Not offered to a reader; once a fiche exists, the panel is gone.
    reader = text_of(client_for(elu_ussel).get(url("plan", pk=ussel_la_courtine.pk)))
    assert "Commencer le plan d’action" not in reader
    fiche(ussel_la_courtine, "1.1")
    page = text_of(client_for(cdp_ussel).get(url("plan", pk=ussel_la_courtine.pk)))
    assert "Commencer le plan d’action" not in page


def test_a_stored_control_character_does_not_stop_the_national_export(national, plan_ussel):
    """A title saved with a control character before the forms refused them: the export
    writes it without that character, and every other fiche with it."""
    FicheAction.objects.filter(beneficiaire=plan_ussel, reference="1.1").update(
        titre="Halle\x01 couverte\x1b"
    )
    export = ExportPlan.objects.create(perimetre="national", requested_by=national)

    build_export(export.pk)

    export.refresh_from_db()
    assert export.statut == "pret", export.erreur
    with default_storage.open(export.fichier.name) as stored:
        sheet = load_workbook(io.BytesIO(stored.read()), read_only=True)["Fiches action"]
        titles = sorted(row[4] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert titles == ["Boutique à l'essai", "Halle couverte"]
