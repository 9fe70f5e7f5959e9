"""python manage.py import_pvd: the three ANCT formats, joins and leaves, faults, real files."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from auditlog.models import LogEntry
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Q

from communes.importers.csvfile import ImportFileError
from communes.importers.pvd import detect_format, parse_liste, read_header
from communes.models import (
    Beneficiaire,
    Commune,
    DecisionStatut,
    Departement,
    IdentifiantPVD,
    MembreBeneficiaire,
)
from pvd.models import ImportRun
from tests.factories import CommuneFactory, DepartementFactory, EPCIFactory, RegionFactory

from .conftest import write_csv

FIXTURE = Path(settings.BASE_DIR) / "portail" / "fixtures" / "demo_territoires.json"
DEMO = json.loads(FIXTURE.read_text(encoding="utf-8"))
NOMS = {c["code"]: c["nom"] for c in DEMO["communes"]}
IDS_2021 = DEMO["identifiants_pvd"]["2021-01-22"]
IDS_2023 = DEMO["identifiants_pvd"]["2023-01-01"]

LISTE2021_HEADER = [
    "id_pvd", "insee_com", "lib_com", "lib_reg", "insee_dep", "lib_dep", "regroupement", "pop",
    "date_signature", "siren_epci", "lib_epci",
]  # fmt: skip
ORIGINAL_2021_HEADER = [
    "id_pvd", "insee_com", "lib_com", "lib_reg", "insee_dep", "lib_dep", "nom_maire",
    "mel_mairie", "site_mairie", "regroupement", "pop", "date_signature", "siren_epci",
    "lib_epci",
]  # fmt: skip
COG2023_HEADER = [
    "insee_com", "lib_com", "id_pvd", "id_ti", "id_crte", "id_acv", "id_ami", "id_fabp",
    "id_amm", "id_habinclus", "id_cite", "id_cde", "id_fs", "id_acv2", "id_va", "id_site",
]  # fmt: skip
DATAGOUV_HEADER = ["insee_com", "lib_com", "id_pvd", "date_signature"]

LIST_SECTION = "Regroupements différents, à décider par une personne"


def liste2021_row(id_pvd: str, code: str, nom: str, header=LISTE2021_HEADER) -> list[str]:
    values = {
        "id_pvd": id_pvd,
        "insee_com": code,
        "lib_com": nom,
        "lib_reg": "Région",
        "insee_dep": code[:2],
        "lib_dep": "Département",
        "nom_maire": "Jean Dupont",
        "mel_mairie": "jean.dupont@example.org",
        "site_mairie": "https://mairie.example.org",
        "regroupement": "NA",
        "pop": "1000",
        "date_signature": "",
        "siren_epci": "200066744",
        "lib_epci": "CC",
    }
    return [values[c] for c in header]


def cog2023_row(code: str, id_pvd: str, nom: str | None = None) -> list[str]:
    return [code, nom or NOMS.get(code, code), id_pvd, "ti-1", "crte-1"] + [""] * 11


def write_liste2021(path: Path, rows, header=LISTE2021_HEADER) -> Path:
    return write_csv(path, header, rows, ",", csv.QUOTE_ALL)


def write_cog2023(path: Path, ids: dict[str, str], extra_rows=()) -> Path:
    rows = [cog2023_row(code, id_pvd) for code, id_pvd in ids.items()]
    rows.append(cog2023_row("36088", "", "Issoudun"))  # not PVD: no id_pvd
    rows += list(extra_rows)
    return write_csv(path, COG2023_HEADER, rows, ",")


def run(path: Path, **options) -> str:
    out = io.StringIO()
    call_command("import_pvd", str(path), stdout=out, **options)
    return out.getvalue()


def snapshot() -> dict:
    """Every row of the programme tables, to prove that nothing changed."""
    return {
        model.__name__: sorted(model.objects.values_list(), key=str)
        for model in (Beneficiaire, MembreBeneficiaire, DecisionStatut, IdentifiantPVD)
    }


def members(nom: str) -> set[str]:
    beneficiaire = Beneficiaire.objects.get(nom=nom)
    return set(beneficiaire.membres.filter(actif=True).values_list("commune_id", flat=True))


@pytest.fixture
def eguzon(territoires) -> Commune:
    """An Indre commune outside the programme."""
    return CommuneFactory(
        code="36070",
        nom="Éguzon-Chantôme",
        departement=Departement.objects.get(code="36"),
        epci_id="200068872",
        population=1394,
    )


# --------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "delimiter", "expected"),
    [
        (LISTE2021_HEADER, ",", "liste2021"),
        (ORIGINAL_2021_HEADER, ",", "liste2021"),
        (COG2023_HEADER, ",", "cog2023"),
        (COG2023_HEADER[:5], ";", "cog2023"),
        (DATAGOUV_HEADER, ",", "datagouv"),
        (["date_signature", "id_pvd", "insee_com", "lib_com"], ";", "datagouv"),
    ],
)
def test_format_is_recognised_by_its_columns(tmp_path, header, delimiter, expected):
    path = write_csv(tmp_path / "liste.csv", header, [], delimiter)
    assert detect_format(path, read_header(path)[0]).key == expected


@pytest.mark.parametrize(
    "header",
    [
        ["Commune", "EPCI", "Code commune", "PVD"],  # the ORT table
        [*DATAGOUV_HEADER, "pop"],  # liste2021 marker, but most of its columns missing…
        [*DATAGOUV_HEADER, "commentaire"],  # datagouv has exactly four columns
        [*LISTE2021_HEADER, "id_ti"],  # both formats at once
    ],
)
def test_unknown_columns_are_refused_with_the_expected_sets(tmp_path, header):
    path = write_csv(tmp_path / "liste.csv", header, [], ",")
    if "pop" in header and "id_ti" not in header:
        # …so it is read as the 2021 list, whose missing columns are named.
        with pytest.raises(ImportFileError) as raised:
            parse_liste(path)
        assert (raised.value.line, raised.value.column) == (1, "lib_reg")
        return
    with pytest.raises(ImportFileError) as raised:
        parse_liste(path)
    message = str(raised.value)
    assert message.startswith("fichier liste.csv, ligne 1 : colonnes non reconnues")
    assert "liste ANCT du 22 janvier 2021 : id_pvd, insee_com, lib_com, lib_reg" in message
    assert "COG 2023 : insee_com, lib_com, id_pvd, id_ti, id_crte, …" in message
    assert "exactement insee_com, lib_com, id_pvd, date_signature" in message


def test_unknown_format_through_the_command(territoires, tmp_path):
    path = write_csv(tmp_path / "ort.csv", ["Commune", "Code commune"], [["Ussel", "19275"]], ",")
    before = snapshot()
    with pytest.raises(CommandError, match="Import annulé, base inchangée. fichier ort.csv"):
        run(path)
    assert snapshot() == before


def test_mayors_personal_columns_are_ignored(empty_base, tmp_path):
    commune = CommuneFactory(code="19275", nom="Ussel", population=9736)
    path = write_liste2021(
        tmp_path / "liste.csv",
        [liste2021_row("pvd-75-1923-9", "19275", "Ussel", ORIGINAL_2021_HEADER)],
        ORIGINAL_2021_HEADER,
    )
    out = run(path)
    assert "Bénéficiaires créés                      : 1" in out
    assert members("Ussel") == {commune.code}
    stored = [ImportRun.objects.get().report, out]
    stored += [str(e.changes) for e in LogEntry.objects.all()]
    assert not any("dupont" in text.lower() for text in stored)


# --------------------------------------------------------------------------------------
# The 2021 list: grouped applications
# --------------------------------------------------------------------------------------


@pytest.fixture
def small_reference(empty_base) -> dict[str, Commune]:
    """Five communes in two EPCI, without any beneficiary."""
    region = RegionFactory(code="75", nom="Nouvelle-Aquitaine")
    correze = DepartementFactory(code="19", nom="Corrèze", region=region)
    creuse = DepartementFactory(code="23", nom="Creuse", region=region)
    hcc = EPCIFactory(siren="200066744", nom="CC Haute-Corrèze Communauté")
    autre = EPCIFactory(siren="242300000", nom="CC Creuse Grand Sud")
    rows = [
        ("23067", "La Courtine", creuse, autre, 769),
        ("19275", "Ussel", correze, hcc, 9736),
        ("19028", "Bort-les-Orgues", correze, hcc, 2677),
        ("19148", "Neuvic", correze, hcc, 1648),
        ("19031", "Bugeat", correze, hcc, 834),
    ]
    return {
        code: CommuneFactory(code=code, nom=nom, departement=dep, epci=epci, population=pop)
        for code, nom, dep, epci, pop in rows
    }


def test_liste2021_shared_id_makes_one_beneficiary(small_reference, tmp_path):
    path = write_liste2021(
        tmp_path / "liste.csv",
        [
            liste2021_row("pvd-75-1923-9", "23067", "La Courtine"),
            liste2021_row("pvd-75-19-5", "19028", "Bort-les-Orgues"),
            liste2021_row("pvd_0001", "999999", "Trifouilly-les-Oies"),
            liste2021_row("pvd-75-1923-9", "19275", "Ussel"),
            liste2021_row("pvd-75-19-5", "19148", "Neuvic"),
            liste2021_row("", "19031", "Bugeat"),
        ],
    )
    out = run(path)

    assert Beneficiaire.objects.count() == 3
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    assert (ussel.departement_id, ussel.epci_id) == ("19", "200066744")
    assert ussel.motif_epci_multiples.startswith(
        "Candidature groupée de la liste ANCT du 22/01/2021"
    )
    assert "CC Creuse Grand Sud (242300000) : La Courtine" in ussel.motif_epci_multiples
    assert members("Ussel – La Courtine") == {"19275", "23067"}
    assert members("Bort-les-Orgues – Neuvic") == {"19028", "19148"}
    assert Beneficiaire.objects.get(nom="Bort-les-Orgues – Neuvic").motif_epci_multiples == ""
    assert members("Bugeat") == {"19031"}

    for beneficiaire in Beneficiaire.objects.all():
        assert beneficiaire.statut == Beneficiaire.Statut.LAUREAT
        decisions = list(
            beneficiaire.decisions.order_by("pk").values_list(
                "ancien_statut", "nouveau_statut", "date_decision", "reference", "decided_by"
            )
        )
        assert decisions == [
            ("", "candidat", date(2021, 1, 22), "Liste ANCT du 22/01/2021", None),
            (
                "candidat",
                "laureat",
                date(2021, 1, 22),
                "Liste ANCT des communes Petites villes de demain du 22/01/2021",
                None,
            ),
        ]

    ids = set(IdentifiantPVD.objects.values_list("commune_id", "id_pvd", "date_liste"))
    assert ids == {
        ("23067", "pvd-75-1923-9", date(2021, 1, 22)),
        ("19275", "pvd-75-1923-9", date(2021, 1, 22)),
        ("19028", "pvd-75-19-5", date(2021, 1, 22)),
        ("19148", "pvd-75-19-5", date(2021, 1, 22)),
    }  # Bugeat has no id in this list: nothing recorded
    assert "Bénéficiaires créés                      : 3" in out
    assert "Communes entrées dans le programme       : 5" in out
    assert "Ligne modèle ignorée : 1" in out
    assert "ligne 4 : 999999 Trifouilly-les-Oies" in out
    assert "Candidatures groupées sur plusieurs EPCI : 1" in out
    run_record = ImportRun.objects.get()
    assert (run_record.kind, run_record.created, run_record.skipped) == ("pvd", 3 + 4, 1)

    before = snapshot()
    out = run(path)
    assert snapshot() == before
    assert "Communes déjà dans un bénéficiaire actif : 5" in out
    second = ImportRun.objects.order_by("-pk").first()
    assert (second.created, second.updated, second.unchanged) == (0, 0, 5)


def test_same_name_in_a_group_gets_its_departement(small_reference, tmp_path):
    savoie = DepartementFactory(code="73", nom="Savoie")
    isere = DepartementFactory(code="38", nom="Isère")
    CommuneFactory(code="38315", nom="Le Pont-de-Beauvoisin", departement=isere, population=5)
    CommuneFactory(code="73204", nom="Le Pont-de-Beauvoisin", departement=savoie, population=9)
    path = write_liste2021(
        tmp_path / "liste.csv",
        [
            liste2021_row("pvd-84-38-1", "38315", "Le Pont-de-Beauvoisin"),
            liste2021_row("pvd-84-38-1", "73204", "Le Pont-de-Beauvoisin"),
        ],
    )
    run(path)
    assert (
        Beneficiaire.objects.get().nom == "Le Pont-de-Beauvoisin (73) – Le Pont-de-Beauvoisin (38)"
    )


def test_regrouping_conflict_is_reported_and_left_alone(territoires, eguzon, tmp_path):
    ids = dict(IDS_2021)
    rows = []
    for code in NOMS:
        if code in {"19275", "23067"}:
            id_pvd = "pvd-75-1923-9"  # Ussel + La Courtine… and Éguzon-Chantôme below
        elif code in {"36018", "36005"}:
            id_pvd = "pvd-24-36-99"  # Le Blanc + Ardentes, two beneficiaries
        else:
            id_pvd = ids[code]  # Bort-les-Orgues + Neuvic share pvd-75-19-5, as in the base
        rows.append(liste2021_row(id_pvd, code, NOMS[code]))
    rows.append(liste2021_row("pvd-75-1923-9", "36070", "Éguzon-Chantôme"))
    path = write_liste2021(tmp_path / "liste.csv", rows)
    before = snapshot()

    out = run(path, date_liste="2023-06-01")

    after = snapshot()
    for name in ("Beneficiaire", "MembreBeneficiaire", "DecisionStatut"):
        assert after[name] == before[name]
    assert members("Ussel – La Courtine") == {"19275", "23067"}
    assert members("Bort-les-Orgues – Neuvic") == {"19028", "19148"}
    assert not MembreBeneficiaire.objects.filter(commune=eguzon).exists()
    assert "Regroupements à décider                  : 2" in out
    assert "Communes déjà dans un bénéficiaire actif : 16" in out  # 14 Indre + Bort, Neuvic
    assert f"  {LIST_SECTION} : 2" in out
    assert (
        "liste ANCT : 19275 Ussel, 36070 Éguzon-Chantôme, 23067 La Courtine "
        "(id_pvd pvd-75-1923-9) ; en base : « Ussel – La Courtine » "
        "(19275 Ussel, 23067 La Courtine) ; hors de tout bénéficiaire actif : "
        "36070 Éguzon-Chantôme"
    ) in out.replace("\n", " ")
    assert (
        "liste ANCT : 36018 Le Blanc, 36005 Ardentes (id_pvd pvd-24-36-99) ; en base : "
        "« Ardentes » (36005 Ardentes) ; « Le Blanc » (36018 Le Blanc)"
    ) in out
    # The ids of the list are facts: they are recorded, grouping or not.
    assert IdentifiantPVD.objects.get(commune=eguzon).id_pvd == "pvd-75-1923-9"


# --------------------------------------------------------------------------------------
# Later lists: joins, leaves, ids
# --------------------------------------------------------------------------------------


def test_same_list_as_the_base_changes_nothing(territoires, tmp_path):
    path = write_cog2023(tmp_path / "ngeo.csv", IDS_2023)
    before = snapshot()
    out = run(path)
    assert snapshot() == before
    assert "Date de la liste : 01/01/2023 (par défaut pour ce format" in out
    assert "date du COG 2023" in out
    assert "Lignes sans id_pvd (communes hors PVD) : 1" in out
    assert "Communes déjà dans un bénéficiaire actif : 20" in out
    assert "Identifiants PVD déjà enregistrés        : 20" in out
    record = ImportRun.objects.get()
    assert (record.created, record.updated, record.unchanged, record.skipped) == (0, 0, 20, 0)


def test_cog2023_joins_and_leaves(territoires, eguzon, tmp_path):
    ids = {c: i for c, i in IDS_2023.items() if c not in {"36018", "23067"}}
    ids["36070"] = "pvd-24-36-17"
    path = write_cog2023(tmp_path / "ngeo.csv", ids)

    out = run(path)

    # Le Blanc left: its beneficiary is withdrawn.
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc")
    assert le_blanc.statut == Beneficiaire.Statut.RETIRE
    assert not le_blanc.membres.filter(actif=True).exists()
    retrait = le_blanc.decisions.get(nouveau_statut="retire")
    assert (retrait.ancien_statut, retrait.date_decision, retrait.decided_by) == (
        "laureat",
        date(2023, 1, 1),
        None,
    )
    assert retrait.reference == "Absente de la liste ANCT du 01/01/2023"
    assert retrait.motif
    # La Courtine left a group that keeps Ussel.
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    assert ussel.statut == Beneficiaire.Statut.LAUREAT
    assert members("Ussel – La Courtine") == {"19275"}
    assert (
        "23067 La Courtine quitte le bénéficiaire « Ussel – La Courtine », "
        "qui garde 19275 Ussel" in out
    )
    membre = MembreBeneficiaire.objects.get(commune_id="23067")
    assert LogEntry.objects.get_for_object(membre).filter(action=LogEntry.Action.UPDATE).exists()
    # Éguzon-Chantôme joined.
    eguzon_b = Beneficiaire.objects.get(nom="Éguzon-Chantôme")
    assert (eguzon_b.statut, eguzon_b.departement_id, eguzon_b.epci_id) == (
        "laureat",
        "36",
        "200068872",
    )
    assert list(eguzon_b.decisions.values_list("decided_by", flat=True)) == [None, None]
    assert eguzon_b.decisions.filter(
        nouveau_statut="laureat",
        reference="Liste ANCT des communes Petites villes de demain du 01/01/2023",
    ).exists()
    # Neuvic keeps its beneficiary, with its new id recorded next to the old one.
    assert members("Bort-les-Orgues – Neuvic") == {"19028", "19148"}
    assert set(
        IdentifiantPVD.objects.filter(commune_id="19148").values_list("id_pvd", "date_liste")
    ) == {("pvd-75-19-5", date(2021, 1, 22)), ("pvd-75-19-17", date(2023, 1, 1))}
    # The ids of 2023 of the communes that left are gone; those of 2021 stay.
    assert not IdentifiantPVD.objects.filter(commune_id="36018", date_liste="2023-01-01").exists()
    assert IdentifiantPVD.objects.filter(commune_id="36018", date_liste="2021-01-22").exists()

    for line in [
        "Bénéficiaires créés                      : 1",
        "Communes entrées dans le programme       : 1",
        "Communes sorties du programme            : 2",
        "Bénéficiaires retirés                    : 1",
        "Communes déjà dans un bénéficiaire actif : 18",
        "Identifiants PVD enregistrés             : 1",
    ]:
        assert line in out
    record = ImportRun.objects.get()
    assert (record.created, record.updated) == (1 + 1, 2 + 1 + 2)  # + 2 ids removed
    assert "36018 Le Blanc quitte le bénéficiaire « Le Blanc »" in record.report

    before = snapshot()
    out = run(path)
    assert snapshot() == before
    assert DecisionStatut.objects.filter(beneficiaire=le_blanc).count() == 3
    second = ImportRun.objects.order_by("-pk").first()
    assert (second.created, second.updated) == (0, 0)


def test_unknown_insee_code_is_reported_not_imported(territoires, tmp_path):
    path = write_cog2023(
        tmp_path / "ngeo.csv", IDS_2023, extra_rows=[cog2023_row("01001", "pvd-84-01-1", "X")]
    )
    out = run(path)
    assert "Codes INSEE inconnus                     : 1" in out
    assert "ligne 23 : 01001 X (id_pvd pvd-84-01-1)" in out
    assert not IdentifiantPVD.objects.filter(commune_id="01001").exists()
    assert ImportRun.objects.get().skipped == 1


def test_older_list_is_refused(territoires, tmp_path):
    path = write_liste2021(
        tmp_path / "liste.csv", [liste2021_row(IDS_2021[c], c, n) for c, n in NOMS.items()]
    )
    before = snapshot()
    with pytest.raises(CommandError) as raised:
        run(path)
    assert "Une liste plus récente (du 01/01/2023) a déjà été importée." in str(raised.value)
    assert snapshot() == before
    assert not ImportRun.objects.exists()


def test_empty_reference_is_refused(empty_base, tmp_path):
    path = write_cog2023(tmp_path / "ngeo.csv", {"19275": "pvd-75-1923-10"})
    with pytest.raises(CommandError) as raised:
        run(path)
    assert str(raised.value).endswith(
        "Importez d'abord le référentiel territorial (import_territoires)."
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [("22/01/2021", "--date-liste : date invalide « 22/01/2021 »"), ("2999-01-01", "futur")],
)
def test_bad_date_liste_option(territoires, tmp_path, value, message):
    path = write_cog2023(tmp_path / "ngeo.csv", IDS_2023)
    with pytest.raises(CommandError, match=message):
        run(path, date_liste=value)


# --------------------------------------------------------------------------------------
# The data.gouv.fr list
# --------------------------------------------------------------------------------------


def write_datagouv(path: Path, dates: dict[str, str], extra=()) -> Path:
    header = ["id_pvd", "insee_com", "date_signature", "lib_com"]  # another order
    rows = [[IDS_2023.get(c, ""), c, d, NOMS.get(c, c)] for c, d in dates.items()]
    return write_csv(path, header, [*rows, *extra], ";")


def test_datagouv_needs_date_liste(territoires, tmp_path):
    path = write_datagouv(tmp_path / "liste-pvd.csv", dict.fromkeys(NOMS, ""))
    with pytest.raises(CommandError) as raised:
        run(path)
    message = str(raised.value)
    assert "liste data.gouv.fr" in message
    assert "indiquez-la avec --date-liste AAAA-MM-JJ" in message


def test_datagouv_stores_signature_dates(territoires, eguzon, tmp_path):
    dates = dict.fromkeys(NOMS, "2021-06-15")
    dates["23067"] = ""
    path = write_datagouv(
        tmp_path / "liste-pvd.csv",
        dates,
        extra=[["pvd-24-36-17", "36070", "2022-03-04", "Éguzon-Chantôme"]],
    )
    out = run(path, date_liste="2024-01-02")

    signed = dict(
        MembreBeneficiaire.objects.filter(actif=True).values_list("commune_id", "date_signature")
    )
    assert signed["19275"] == date(2021, 6, 15)
    assert signed["23067"] is None
    assert signed["36070"] == date(2022, 3, 4)
    assert "Dates de signature mises à jour          : 19" in out
    assert "Date de la liste : 02/01/2024 (donnée par --date-liste)" in out
    assert IdentifiantPVD.objects.filter(date_liste="2024-01-02").count() == 21

    before = snapshot()
    out = run(path, date_liste="2024-01-02")
    assert snapshot() == before
    assert "Dates de signature mises à jour          : 0" in out


def test_bad_date_names_line_and_column_and_changes_nothing(territoires, eguzon, tmp_path):
    path = write_datagouv(
        tmp_path / "liste-pvd.csv",
        {"36070": "2022-03-04", "19275": "15/06/2021"},
    )
    before = snapshot()
    with pytest.raises(CommandError) as raised:
        run(path, date_liste="2024-01-02")
    assert str(raised.value) == (
        "Import annulé, base inchangée. fichier liste-pvd.csv, ligne 3, "
        "colonne « date_signature » : date invalide « 15/06/2021 » : format attendu AAAA-MM-JJ"
    )
    assert snapshot() == before
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize(
    ("rows", "where"),
    [
        ([["pvd-1", "", "", "X"]], "ligne 2, colonne « insee_com » : valeur obligatoire manquante"),
        ([["pvd-1", "1927", "", "X"]], "ligne 2, colonne « insee_com » : code INSEE invalide"),
        (
            [["pvd-1", "19275", "", "Ussel"], ["pvd-2", "19275", "", "Ussel"]],
            "ligne 3, colonne « insee_com » : code INSEE « 19275 » en double (déjà ligne 2)",
        ),
        ([["pvd 1", "19275", "", "Ussel"]], "ligne 2, colonne « id_pvd » : identifiant PVD"),
    ],
)
def test_malformed_rows(territoires, tmp_path, rows, where):
    path = write_datagouv(tmp_path / "liste-pvd.csv", {}, extra=rows)
    with pytest.raises(CommandError, match=re.escape(where)):
        run(path, date_liste="2024-01-02")


def test_missing_column_names_it(territoires, tmp_path):
    header = [c for c in LISTE2021_HEADER if c != "pop"]
    path = write_csv(tmp_path / "liste.csv", header, [], ",")
    with pytest.raises(CommandError) as raised:
        run(path, date_liste="2024-01-02")
    assert "fichier liste.csv, ligne 1, colonne « pop » : colonne obligatoire absente" in str(
        raised.value
    )


# --------------------------------------------------------------------------------------
# The real national files
# --------------------------------------------------------------------------------------

REAL = settings.REFERENCE_DATA_DIR
REAL_2021 = REAL / "anct_pvd_communes_2021-01-22_redacted.csv"
REAL_2023 = REAL / "anct_ngeo_programmes_cog2023.csv"


def active_codes() -> set[str]:
    return set(
        MembreBeneficiaire.objects.filter(
            actif=True, beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS
        ).values_list("commune_id", flat=True)
    )


@pytest.mark.realdata
@pytest.mark.skipif(not REAL.exists(), reason=f"données de référence absentes : {REAL}")
def test_real_national_lists(empty_base):
    call_command(
        "import_territoires",
        cog=str(REAL / "insee_cog_communes_2024-01-01.csv"),
        siren=str(REAL / "communes_epci_dep_reg_siren.csv"),
        populations=str(REAL / "populations_communes.csv"),
        stdout=io.StringIO(),
    )

    # The list of 22 January 2021.
    out = run(REAL_2021)
    assert len(active_codes()) == 1_606
    sizes = Counter(
        Beneficiaire.objects.annotate(n=Count("membres", filter=Q(membres__actif=True)))
        .filter(n__gt=1)
        .values_list("n", flat=True)
    )
    assert sizes == {2: 75, 3: 20, 4: 7, 6: 1, 7: 1}
    grouped = sum(size * n for size, n in sizes.items())
    assert Beneficiaire.objects.count() == 1_606 - grouped + 104 == 1_459
    assert Beneficiaire.objects.filter(statut="laureat").count() == 1_459
    assert DecisionStatut.objects.count() == 2 * 1_459
    for nom in ("Ussel – La Courtine", "Bort-les-Orgues – Neuvic"):
        assert Beneficiaire.objects.get(nom=nom).epci_id == "200066744"
    assert members("Ussel – La Courtine") == {"19275", "23067"}
    assert "999999 Trifouilly-les-Oies" in out
    assert IdentifiantPVD.objects.count() == 1_021

    before = snapshot()
    run(REAL_2021)
    assert snapshot() == before
    assert (ImportRun.objects.latest("pk").created, ImportRun.objects.latest("pk").updated) == (
        0,
        0,
    )

    # ANCT's table on the COG 2023.
    out = run(REAL_2023)
    active = active_codes()
    assert len(active) == 1_653
    assert {"87002", "01348"}.isdisjoint(active)
    assert {"29039", "85113"} <= active
    assert "Communes sorties du programme            : 13" in out
    assert "Communes entrées dans le programme       : 60" in out
    assert (
        "01348 Saint-Didier-sur-Chalaronne quitte le bénéficiaire "
        "« Saint-Didier-sur-Chalaronne – Thoissey », qui garde 01420 Thoissey"
    ) in out
    assert Beneficiaire.objects.get(nom="Ambazac").statut == "retire"
    assert set(
        IdentifiantPVD.objects.filter(commune_id="19148").values_list("id_pvd", "date_liste")
    ) == {("pvd-75-19-5", date(2021, 1, 22)), ("pvd-75-19-17", date(2023, 1, 1))}
    assert members("Bort-les-Orgues – Neuvic") == {"19028", "19148"}
    assert IdentifiantPVD.objects.filter(date_liste="2023-01-01").count() == 1_653

    with pytest.raises(CommandError, match=r"Une liste plus récente \(du 01/01/2023\)"):
        run(REAL_2021)

    before = snapshot()
    run(REAL_2023)
    assert snapshot() == before
    last = ImportRun.objects.latest("pk")
    assert (last.created, last.updated, last.unchanged) == (0, 0, 1_653)


def test_a_partial_list_is_refused_unless_forced(territoires, tmp_path):
    """A list with only the Indre would make Haute-Corrèze leave: probably a partial file."""
    from django.core.management import CommandError, call_command

    from communes.models import MembreBeneficiaire

    path = tmp_path / "partielle.csv"
    rows = ["insee_com,lib_com,id_pvd,date_signature"]
    rows += [f"{code},X,pvd-24-36-{i},2021-06-01" for i, code in enumerate(INDRE_CODES, 1)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match="--force"):
        call_command("import_pvd", str(path), date_liste="2024-01-02", stdout=io.StringIO())
    assert MembreBeneficiaire.objects.filter(actif=True).count() == 20
    call_command("import_pvd", str(path), date_liste="2024-01-02", force=True, stdout=io.StringIO())
    assert MembreBeneficiaire.objects.filter(actif=True).count() == 16


INDRE_CODES = [
    "36001", "36005", "36006", "36031", "36034", "36045", "36063", "36046",
    "36018", "36093", "36141", "36192", "36208", "36228", "36230", "36241",
]  # fmt: skip
