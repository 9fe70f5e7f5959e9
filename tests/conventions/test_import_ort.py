"""python manage.py import_ort: the national ORT tracking file, faults, the real file."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from communes.models import Beneficiaire, MembreBeneficiaire
from conventions.models import Convention
from pvd.models import ImportRun

HEADER = [
    "Commune", "EPCI", "Département", "Région", "Code commune", "Statut de la commune",
    "Signée ?", "Si signée, date de signature", "Si non signée, date de signature envisagée",
    "Durée (en années)", "Date de fin estimée", "Remarques", "Avancement", "ACV", "PVD",
    "longitude", "latitude", "Dernière actualisation", "Actualisé par",
]  # fmt: skip
TITRE = "Convention-cadre Petites villes de demain valant ORT – {}"


def ort_row(
    code: str,
    nom: str = "Commune",
    *,
    signee: str = "Signée",
    signature: str = "2023-02-17",
    prevue: str = "",
    duree: str = "0",
    fin: str = "",
    remarques: str = "",
    pvd: str = "true",
) -> list[str]:
    values = {
        "Commune": f"{code[:2]} - {nom}",
        "EPCI": "CC",
        "Département": "Département",
        "Région": "Région",
        "Code commune": code,
        "Statut de la commune": "2. Commune PVD" if pvd == "true" else "1. Commune ACV",
        "Signée ?": signee,
        "Si signée, date de signature": signature,
        "Si non signée, date de signature envisagée": prevue,
        "Durée (en années)": duree,
        "Date de fin estimée": fin,
        "Remarques": remarques,
        "Avancement": "",
        "ACV": "false" if pvd == "true" else "true",
        "PVD": pvd,
        "longitude": "1.0",
        "latitude": "46.0",
        "Dernière actualisation": "27-06-2023 14:13",
        "Actualisé par": "CENSORED",
    }
    return [values[c] for c in HEADER]


def not_signed(code: str, nom: str = "Commune", prevue: str = "", signee="Non signée"):
    return ort_row(code, nom, signee=signee, signature="", prevue=prevue)


def write_ort(tmp_path: Path, rows: list[list[str]], header=HEADER, name="ort.csv") -> Path:
    path = tmp_path / name
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(path: Path) -> str:
    out = io.StringIO()
    call_command("import_ort", str(path), stdout=out)
    return out.getvalue()


def cadres(nom: str):
    return Convention.objects.filter(beneficiaire__nom=nom, type=Convention.Type.CADRE)


def snapshot() -> list:
    return sorted(Convention.objects.values_list(), key=str)


def last_run() -> ImportRun:
    return ImportRun.objects.filter(kind="ort").latest("pk")


def counts(run_: ImportRun) -> tuple[int, int, int, int]:
    return run_.created, run_.updated, run_.unchanged, run_.skipped


def cadre_for(beneficiaire_nom: str, **fields) -> Convention:
    fields.setdefault("titre", f"Convention-cadre – {beneficiaire_nom}")
    return Convention.objects.create(
        beneficiaire=Beneficiaire.objects.get(nom=beneficiaire_nom),
        type=Convention.Type.CADRE,
        **fields,
    )


# --------------------------------------------------------------------------------------
# Signed rows
# --------------------------------------------------------------------------------------


def test_a_signed_row_creates_the_signed_convention_cadre(territoires, tmp_path):
    path = write_ort(
        tmp_path,
        [
            ort_row("36018", "Le Blanc", signature="2023-02-17", duree="5", fin="17-02-2028"),
            ort_row("36001", "Aigurande", signature="2023-03-29", duree="6"),
            ort_row("36230", "Vatan", signature="2023-03-07"),
        ],
    )
    out = run(path)

    le_blanc = cadres("Le Blanc").get()
    assert le_blanc.titre == TITRE.format("Le Blanc")
    assert (le_blanc.statut, le_blanc.source) == ("signee", "import_ort")
    assert le_blanc.date_signature == le_blanc.date_entree_vigueur == date(2023, 2, 17)
    assert le_blanc.date_redaction == date(2023, 2, 17)
    assert (le_blanc.duree_annees, le_blanc.date_fin) == (5, date(2028, 2, 17))
    assert le_blanc.convention_modifiee is None and le_blanc.created_by is None
    # No end date in the file: computed from the duration.
    aigurande = cadres("Aigurande").get()
    assert (aigurande.duree_annees, aigurande.date_fin) == (6, date(2029, 3, 29))
    # A duration of 0 means unknown.
    vatan = cadres("Vatan").get()
    assert (vatan.duree_annees, vatan.date_fin) == (None, None)

    assert Convention.objects.count() == 3
    assert counts(last_run()) == (3, 0, 0, 0)
    assert last_run().kind == "ort" and last_run().files == str(path)
    assert "Conventions-cadres créées" in out
    assert "« Le Blanc » : signée le 17/02/2023, 5 ans, fin le 17/02/2028" in out
    assert (
        "Communes PVD marquées « Signée » : 3, dont 3 couvertes par une convention-cadre "
        "signée de leur bénéficiaire actif et 0 non couvertes."
    ) in out


def test_a_second_run_changes_nothing_and_a_changed_file_updates(territoires, tmp_path):
    rows = [
        ort_row("36018", "Le Blanc", duree="5", fin="17-02-2028"),
        ort_row("19275", "Ussel", signature="2022-10-18"),
        ort_row("23067", "La Courtine", signature="2022-10-18"),
    ]
    path = write_ort(tmp_path, rows)
    run(path)
    before = snapshot()
    out = run(path)
    assert snapshot() == before
    assert counts(last_run()) == (0, 0, 2, 0)
    assert "Conventions-cadres inchangées" in out

    rows[0] = ort_row("36018", "Le Blanc", signature="2023-02-18", duree="4")
    out = run(write_ort(tmp_path, rows))
    assert counts(last_run()) == (0, 1, 1, 0)
    le_blanc = cadres("Le Blanc").get()
    assert (le_blanc.date_signature, le_blanc.duree_annees, le_blanc.date_fin) == (
        date(2023, 2, 18),
        4,
        date(2027, 2, 18),
    )
    assert le_blanc.updated_at > le_blanc.created_at
    assert (
        "« Le Blanc » : date de signature 17/02/2023 → 18/02/2023, entrée en vigueur "
        "17/02/2023 → 18/02/2023, durée (années) 5 → 4, date de fin 17/02/2028 → 18/02/2027, "
        "date de rédaction 17/02/2023 → 18/02/2023"
    ) in out
    assert Convention.objects.count() == 2


def test_a_grouped_beneficiary_gets_one_convention_at_its_earliest_date(territoires, tmp_path):
    path = write_ort(
        tmp_path,
        [
            ort_row("19275", "Ussel", signature="2022-10-20", duree="5", fin="20-10-2027"),
            ort_row("23067", "La Courtine", signature="2022-10-18", duree="6"),
        ],
    )
    out = run(path)
    convention = cadres("Ussel – La Courtine").get()
    assert convention.titre == TITRE.format("Ussel – La Courtine")
    assert convention.date_signature == date(2022, 10, 18)
    # Duration and end date come from the row that gives the date kept.
    assert (convention.duree_annees, convention.date_fin) == (6, date(2028, 10, 18))
    assert "dates de signature différentes (la plus ancienne est retenue) : 1" in out
    assert (
        "« Ussel – La Courtine » : 19275 Ussel (signée le 20/10/2022), 23067 La Courtine "
        "(signée le 18/10/2022) → 18/10/2022 retenue"
    ) in out
    assert counts(last_run()) == (1, 0, 0, 0)


def test_a_group_signed_for_one_commune_only_is_reported(territoires, tmp_path):
    path = write_ort(
        tmp_path,
        [
            ort_row("19028", "Bort-les-Orgues", signature="2022-10-18"),
            not_signed("19148", "Neuvic", prevue="4e trimestre 2023"),
        ],
    )
    out = run(path)
    assert cadres("Bort-les-Orgues – Neuvic").get().date_signature == date(2022, 10, 18)
    assert "Bénéficiaires dont une partie des communes seulement est signée : 1" in out
    assert (
        "« Bort-les-Orgues – Neuvic » : 19028 Bort-les-Orgues (signée le 18/10/2022), "
        "19148 Neuvic (non signée)"
    ) in out


def test_a_signed_cadre_entered_on_the_portal_is_left_alone(territoires, tmp_path):
    portail = cadre_for(
        "Le Blanc", statut="signee", date_signature=date(2023, 2, 1), titre="ORT du Blanc"
    )
    before = snapshot()
    out = run(write_ort(tmp_path, [ort_row("36018", "Le Blanc", signature="2023-02-17")]))
    assert snapshot() == before
    assert cadres("Le Blanc").get() == portail
    assert counts(last_run()) == (0, 0, 0, 0)
    assert "Conventions-cadres signées saisies sur le portail, laissées telles quelles : 1" in out
    assert (
        "« Le Blanc » : « ORT du Blanc » (signée, signée le 01/02/2023) ; suivi national : "
        "signée le 17/02/2023"
    ) in out
    assert "dont 1 couvertes" in out


def test_an_imported_cadre_amended_on_the_portal_is_left_alone(territoires, tmp_path):
    path = write_ort(tmp_path, [ort_row("36018", "Le Blanc", signature="2023-02-17")])
    run(path)
    Convention.objects.update(statut="modifiee")
    before = snapshot()
    out = run(write_ort(tmp_path, [ort_row("36018", "Le Blanc", signature="2023-02-20")]))
    assert snapshot() == before
    assert "importées puis modifiées sur le portail, laissées telles quelles : 1" in out
    assert "« Le Blanc » : modifiée par avenant ; suivi national : signée le 20/02/2023" in out


def test_signed_in_the_file_with_a_draft_on_the_portal_creates_nothing(territoires, tmp_path):
    cadre_for("Le Blanc", statut="en_signature")
    out = run(write_ort(tmp_path, [ort_row("36018", "Le Blanc", signature="2023-02-17")]))
    assert cadres("Le Blanc").get().statut == "en_signature"
    assert "un projet de convention-cadre est en cours sur le portail" in out
    assert "« Le Blanc » : « Convention-cadre – Le Blanc » (en signature)" in out
    assert "dont 0 couvertes" in out and "1 projet de convention en cours sur le portail" in out


def test_signed_without_a_date_gives_a_signed_convention_to_complete(territoires, tmp_path):
    out = run(
        write_ort(
            tmp_path,
            [
                ort_row("36018", "Le Blanc", signature=""),
                ort_row("19275", "Ussel", signature=""),
                ort_row("23067", "La Courtine", signature="2022-10-18"),
            ],
        )
    )
    # The file says « Signée »: signed, with its date left to complete on the portal.
    le_blanc = cadres("Le Blanc").get()
    assert le_blanc.statut == Convention.Statut.SIGNEE
    assert le_blanc.date_signature is None
    # In a group, another commune's date dates the convention.
    assert cadres("Ussel – La Courtine").get().date_signature == date(2022, 10, 18)
    assert (
        "Communes marquées « Signée » sans date de signature (convention signée créée, "
        "date à compléter) : 1"
    ) in out
    assert "ligne 2 : 36018 Le Blanc (« Le Blanc »)" in out
    assert "dont 3 couvertes" in out and "0 non couvertes" in out
    # A second run changes nothing, although the record is dated the day of the import.
    again = run(write_ort(tmp_path, [ort_row("36018", "Le Blanc", signature="")]))
    assert "Conventions-cadres mises à jour : 0" in " ".join(again.split())


# --------------------------------------------------------------------------------------
# Rows that are not signed, not PVD, unknown
# --------------------------------------------------------------------------------------


def test_a_not_signed_row_sets_the_planned_date_of_a_draft(territoires, tmp_path):
    draft = cadre_for("Aigurande")
    path = write_ort(
        tmp_path,
        [
            not_signed("36001", "Aigurande", prevue="4e trimestre 2023"),
            not_signed("36230", "Vatan", prevue="1er trimestre 2024", signee="En cours"),
            not_signed("36228", "Valençay", prevue="Pas de date de signature envisagée"),
        ],
    )
    out = run(path)
    draft.refresh_from_db()
    assert (draft.statut, draft.date_signature_prevue) == ("brouillon", "4e trimestre 2023")
    assert Convention.objects.count() == 1  # no convention for the others
    assert "Signature envisagée enregistrée sur le projet de convention-cadre : 1" in out
    assert "« Aigurande » : — → « 4e trimestre 2023 »" in out
    assert "signature envisagée selon le suivi national : 2" in out
    assert "« Vatan » : 1er trimestre 2024 (en cours)" in out
    assert "« Valençay » : non renseignée (non signée)" in out
    assert counts(last_run()) == (0, 1, 0, 0)

    run(path)
    assert counts(last_run()) == (0, 0, 0, 0)


def test_a_not_signed_group_with_different_planned_dates(territoires, tmp_path):
    draft = cadre_for("Ussel – La Courtine")
    run(
        write_ort(
            tmp_path,
            [
                not_signed("19275", "Ussel", prevue="4e trimestre 2023"),
                not_signed("23067", "La Courtine", prevue="1er trimestre 2024"),
            ],
        )
    )
    draft.refresh_from_db()
    assert (
        draft.date_signature_prevue
        == "Ussel : 4e trimestre 2023 ; La Courtine : 1er trimestre 2024"
    )


def test_rows_that_are_not_pvd_are_skipped(territoires, tmp_path):
    path = write_ort(
        tmp_path,
        [
            ort_row("36018", "Le Blanc", pvd="false"),
            ort_row("36001", "Aigurande", pvd="false", signature="pas une date"),
            ort_row("36230", "Vatan"),
        ],
    )
    out = run(path)
    assert list(Convention.objects.values_list("beneficiaire__nom", flat=True)) == ["Vatan"]
    assert "Lignes hors PVD (ACV, autres), ignorées : 2" in " ".join(out.split())
    assert counts(last_run()) == (1, 0, 0, 2)


def test_unknown_codes_and_communes_without_active_beneficiary_are_reported(
    territoires, national, tmp_path
):
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc")
    le_blanc.change_statut(
        "retire", by=national, date_decision=date(2024, 1, 2), reference="Arrêté n° 1"
    )
    out = run(
        write_ort(
            tmp_path,
            [
                ort_row("99999", "Nulle-part"),
                ort_row("36018", "Le Blanc"),
                ort_row("36230", "Vatan"),
            ],
        )
    )
    assert list(Convention.objects.values_list("beneficiaire__nom", flat=True)) == ["Vatan"]
    assert "Codes INSEE inconnus du référentiel territorial, ignorés : 1" in out
    assert "ligne 2 : 99999 Nulle-part (signée le 17/02/2023)" in out
    assert "Communes PVD sans bénéficiaire actif dans le portail, ignorées : 1" in out
    assert (
        "ligne 3 : 36018 Le Blanc (signée le 17/02/2023) : sortie du programme "
        "(bénéficiaire « Le Blanc » : retiré (sorti du programme))"
    ) in out
    assert (
        "Communes PVD marquées « Signée » : 3, dont 1 couvertes par une convention-cadre "
        "signée de leur bénéficiaire actif et 2 non couvertes (1 code INSEE inconnu, "
        "1 sans bénéficiaire actif dans le portail)."
    ) in out
    assert counts(last_run()) == (1, 0, 0, 2)
    # Communes of active beneficiaries the file does not list.
    assert "Communes des bénéficiaires actifs absentes du suivi national : 18" in out


def test_a_signature_date_on_a_row_not_signed_is_ignored_and_reported(territoires, tmp_path):
    out = run(
        write_ort(
            tmp_path,
            [ort_row("36018", "Le Blanc", signee="En cours", signature="2024-09-18")],
        )
    )
    assert not Convention.objects.exists()
    assert "ligne 2 : 36018 Le Blanc (en cours), date « 2024-09-18 »" in out


# --------------------------------------------------------------------------------------
# Faults: the command stops, the database is unchanged
# --------------------------------------------------------------------------------------

MALFORMED = [
    (
        {"signature": "17/02/2023"},
        "colonne « Si signée, date de signature » : date invalide « 17/02/2023 » : format "
        "attendu AAAA-MM-JJ",
    ),
    (
        {"signature": "2023-02-30"},
        "colonne « Si signée, date de signature » : date invalide « 2023-02-30 »",
    ),
    (
        {"duree": "cinq"},
        "colonne « Durée (en années) » : durée invalide « cinq » : un nombre entier est attendu",
    ),
    ({"duree": "-1"}, "colonne « Durée (en années) » : durée invalide « -1 »"),
    (
        {"fin": "2028-02-17"},
        "colonne « Date de fin estimée » : date invalide « 2028-02-17 » : format attendu "
        "JJ-MM-AAAA",
    ),
    ({"fin": "31-02-2028"}, "colonne « Date de fin estimée » : date invalide « 31-02-2028 »"),
    (
        {"fin": "16-02-2023"},
        "colonne « Date de fin estimée » : date de fin « 16-02-2023 » antérieure à la date "
        "de signature « 2023-02-17 »",
    ),
    ({"pvd": "oui"}, "colonne « PVD » : valeur invalide « oui » : « true » ou « false » attendu"),
    ({"signee": "Peut-être"}, "colonne « Signée ? » : valeur invalide « Peut-être »"),
    ({"code": "3601"}, "colonne « Code commune » : code INSEE invalide « 3601 »"),
]


@pytest.mark.parametrize(("fault", "message"), MALFORMED)
def test_a_malformed_value_stops_the_import_and_changes_nothing(
    territoires, tmp_path, fault, message
):
    rows = [ort_row("19275", "Ussel"), ort_row("23067", "La Courtine")]
    run(write_ort(tmp_path, rows))
    before, runs = snapshot(), ImportRun.objects.count()

    code = fault.pop("code", "36018")
    rows = [ort_row("36001", "Aigurande"), ort_row(code, "Le Blanc", **fault)]
    with pytest.raises(CommandError) as raised:
        run(write_ort(tmp_path, rows))
    assert str(raised.value).startswith("Import annulé, base inchangée. fichier ort.csv, ligne 3,")
    assert message in str(raised.value)
    assert snapshot() == before
    assert ImportRun.objects.count() == runs


def test_a_multi_line_remark_does_not_shift_the_line_numbers(territoires, tmp_path):
    rows = [
        ort_row("36001", "Aigurande", remarques="ORT et OPAH-RU.\nDeuxième ligne\nTroisième"),
        ort_row("36018", "Le Blanc", remarques="Une ligne\navec une autre"),
        ort_row("36230", "Vatan", signature="07-03-2023"),
    ]
    path = write_ort(tmp_path, rows)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 7
    with pytest.raises(CommandError, match=r"fichier ort\.csv, ligne 7, colonne « Si signée"):
        run(path)
    assert not Convention.objects.exists()

    rows[2] = ort_row("99999", "Nulle-part")
    out = run(write_ort(tmp_path, rows))
    assert "ligne 7 : 99999 Nulle-part" in out


def test_a_missing_column_is_named(territoires, tmp_path):
    header = [c for c in HEADER if c != "Si signée, date de signature"]
    path = write_ort(tmp_path, [], header=header)
    with pytest.raises(CommandError) as raised:
        run(path)
    assert (
        "fichier ort.csv, ligne 1, colonne « Si signée, date de signature » : colonne "
        "obligatoire absente"
    ) in str(raised.value)


def test_a_file_without_pvd_commune_is_refused(territoires, tmp_path):
    with pytest.raises(CommandError, match="aucune commune PVD dans ce fichier"):
        run(write_ort(tmp_path, [ort_row("36018", pvd="false")]))


def test_a_duplicated_code_is_refused(territoires, tmp_path):
    rows = [ort_row("36018"), ort_row("36001"), ort_row("36018")]
    with pytest.raises(CommandError) as raised:
        run(write_ort(tmp_path, rows))
    assert "ligne 4, colonne « Code commune » : code INSEE « 36018 » en double (déjà ligne 2)" in (
        str(raised.value)
    )


@pytest.mark.django_db
def test_territories_and_beneficiaries_are_required(empty_base, tmp_path):
    path = write_ort(tmp_path, [ort_row("36018")])
    with pytest.raises(CommandError, match=r"Importez d'abord le référentiel territorial"):
        run(path)


def test_without_active_beneficiary_the_error_says_to_import_the_lists(territoires, tmp_path):
    Beneficiaire.objects.update(statut="retire")
    with pytest.raises(CommandError) as raised:
        run(write_ort(tmp_path, [ort_row("36018")]))
    assert str(raised.value) == (
        "Import annulé, base inchangée. Aucun bénéficiaire PVD actif dans le portail : "
        "importez d'abord les listes ANCT des communes Petites villes de demain (import_pvd), "
        "puis le suivi national des ORT."
    )
    assert not ImportRun.objects.filter(kind="ort").exists()


def test_the_import_does_one_query_per_step_not_per_row(territoires, tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    few = write_ort(tmp_path, [ort_row("36018")], name="few.csv")
    many = write_ort(
        tmp_path,
        [ort_row(code) for code in MembreBeneficiaire.objects.values_list("commune", flat=True)],
        name="many.csv",
    )
    with CaptureQueriesContext(connection) as small:
        run(few)
    Convention.objects.all().delete()
    with CaptureQueriesContext(connection) as large:
        run(many)
    assert Convention.objects.count() == 18
    assert len(large) == len(small)


# --------------------------------------------------------------------------------------
# The real national file
# --------------------------------------------------------------------------------------

REAL = settings.REFERENCE_DATA_DIR
REAL_ORT = REAL / "ort_conventions_suivi_national.csv"


@pytest.mark.realdata
@pytest.mark.django_db
@pytest.mark.skipif(not REAL.exists(), reason=f"données de référence absentes : {REAL}")
def test_real_national_ort_file(empty_base):
    call_command(
        "import_territoires",
        cog=str(REAL / "insee_cog_communes_2024-01-01.csv"),
        siren=str(REAL / "communes_epci_dep_reg_siren.csv"),
        populations=str(REAL / "populations_communes.csv"),
        stdout=io.StringIO(),
    )
    for name in ("anct_pvd_communes_2021-01-22_redacted.csv", "anct_ngeo_programmes_cog2023.csv"):
        call_command("import_pvd", str(REAL / name), stdout=io.StringIO())

    out = run(REAL_ORT)
    lines = " ".join(out.split())

    # 1,303 PVD rows « Signée », all covered; 8 of them carry no date in the file.
    assert (
        "Communes PVD marquées « Signée » : 1 303, dont 1 303 couvertes par une "
        "convention-cadre signée de leur bénéficiaire actif et 0 non couvertes."
    ) in lines
    assert "Dont 8 sans date de signature dans le fichier" in lines
    for text in (
        "Lignes du fichier : 2 290",
        "Lignes hors PVD (ACV, autres), ignorées : 658",
        "Communes PVD dans le fichier : 1 632",
        "Codes INSEE inconnus : 0",
        "Communes PVD sans bénéficiaire actif : 0",
        "Bénéficiaires actifs concernés : 1 489",
        "Communes des bénéficiaires actifs absentes du fichier : 21",
        "Conventions-cadres créées : 1 197",
        "Bénéficiaires non signés sans projet : 292",
    ):
        assert text in lines, text
    for section in (
        "Communes marquées « Signée » sans date de signature (convention signée créée, "
        "date à compléter) : 8",
        "dates de signature différentes (la plus ancienne est retenue) : 8",
        "Bénéficiaires dont une partie des communes seulement est signée : 5",
        "Date de signature ignorée : la commune n'est pas marquée « Signée » : 10",
    ):
        assert section in out, section
    assert "ligne 525 : 77296 Moissy-Cramayel (« Moissy-Cramayel »)" in out

    signed = Convention.objects.filter(
        type="cadre", statut="signee", source="import_ort", beneficiaire__statut__in=["laureat"]
    )
    assert signed.count() == Convention.objects.count() == 1_197
    # One convention-cadre per beneficiary.
    assert not (
        Convention.objects.values("beneficiaire").annotate(n=Count("pk")).filter(n__gt=1).exists()
    )
    covered = MembreBeneficiaire.objects.filter(
        actif=True, beneficiaire__conventions__in=signed
    ).values_list("commune_id", flat=True)
    # The 1,303 communes marked signed, plus the 5 unsigned partners of mixed groups.
    assert len(set(covered)) == 1_308
    assert signed.filter(date_fin__isnull=False).count() == 427
    assert signed.filter(duree_annees__isnull=False).count() == 427

    for nom, day in (
        ("Ussel – La Courtine", date(2022, 10, 18)),
        ("Bort-les-Orgues – Neuvic", date(2022, 10, 18)),
        ("Le Blanc", date(2023, 2, 17)),
        ("Aigurande", date(2023, 3, 29)),
    ):
        convention = cadres(nom).get()
        assert convention.date_signature == convention.date_entree_vigueur == day, nom
        assert convention.titre == TITRE.format(nom)
    assert set(
        MembreBeneficiaire.objects.filter(
            actif=True, beneficiaire__conventions__titre=TITRE.format("Ussel – La Courtine")
        ).values_list("commune_id", flat=True)
    ) == {"19275", "23067"}
    # Earliest date of a group kept.
    assert cadres("Propriano – Sartène").get().date_signature == date(2019, 7, 4)
    nonancourt = Convention.objects.get(beneficiaire__membres__commune_id="27438")
    assert (nonancourt.duree_annees, nonancourt.date_fin) == (3, date(2026, 2, 20))

    first = last_run()
    assert counts(first) == (1_197, 0, 0, 658)
    assert "Moissy-Cramayel" in first.report and "… et" not in first.report

    before = snapshot()
    run(REAL_ORT)
    assert snapshot() == before
    assert counts(last_run()) == (0, 0, 1_197, 658)
