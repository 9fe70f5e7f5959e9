"""python manage.py import_territoires: hand-made files, malformed files, the real files."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count

from communes.importers import territoires
from communes.importers.csvfile import ImportFileError, read_rows
from communes.models import EPCI, Commune, Departement, Region
from pvd.models import ImportRun

from .conftest import COG_HEADER, POPULATIONS_HEADER, cog_row, cog_rows, siren_row, siren_rows


@pytest.fixture(params=["copy", "orm"])
def run_import(request, run_import, monkeypatch):
    """Every test runs on both write paths: COPY and the set-based merge (PostgreSQL), and
    the ORM's bulk writes (SQLite, ``make run``)."""
    if request.param == "orm":
        monkeypatch.setattr(territoires, "uses_copy", lambda: False)
    elif connection.vendor != "postgresql":
        pytest.skip("COPY est propre à PostgreSQL")
    return run_import


def snapshot() -> dict:
    """Every row of the territory tables, to prove that nothing changed."""
    return {
        model.__name__: sorted(model.objects.values_list(), key=str)
        for model in (Region, Departement, EPCI, Commune)
    } | {"ImportRun": ImportRun.objects.count()}


# --------------------------------------------------------------------------------------
# Creation, re-run, updates
# --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("empty_base")
def test_creation_from_small_files(files, run_import):
    out = run_import(**files.options())

    assert Region.objects.count() == 4
    assert Departement.objects.count() == 5
    assert EPCI.objects.count() == 3
    assert Commune.objects.count() == 6  # the COMD row is not a commune

    nouvelle_aquitaine = Region.objects.get(code="75")
    assert (nouvelle_aquitaine.nom, nouvelle_aquitaine.siren) == ("Nouvelle-Aquitaine", "200053759")
    correze = Departement.objects.get(code="19")
    assert (correze.nom, correze.region_id, correze.siren) == ("Corrèze", "75", "221900018")
    assert Departement.objects.get(code="2A").siren == ""
    hcc = EPCI.objects.get(siren="200066744")
    assert (hcc.nom, hcc.nature) == ("CC Haute-Corrèze Communauté", "CC")
    assert EPCI.objects.get(siren="200067999").nature == "CA"

    courtine = Commune.objects.get(code="23067")
    assert courtine.nom == "La Courtine"
    assert courtine.nom_recherche == "la courtine"
    assert courtine.departement_id == "23"
    assert courtine.epci_id == "200066744"
    assert courtine.siren == "212300675"
    assert courtine.population == 769
    assert Commune.objects.get(code="2A004").population == 70659  # « 70 659 »
    assert Commune.objects.get(code="19275").population == 9736
    assert Commune.objects.search("courtine").get() == courtine

    assert "Régions : 4 créées" in out
    assert "Communes : 6 créées, 0 mise à jour, 0 inchangée" in out
    assert "EPCI : 3 créés" in out

    run = ImportRun.objects.get()
    assert run.kind == "territoires"
    assert str(files.cog) in run.files and str(files.siren) in run.files
    assert str(files.populations) in run.files
    assert (run.created, run.updated, run.unchanged) == (4 + 5 + 3 + 6, 0, 0)
    # 1 COMD row, 1 SIREN row (Paris 1er) and 1 population (01001) of communes not in the COG
    assert run.skipped == 3
    assert run.report.startswith("Import des territoires")


@pytest.mark.usefixtures("empty_base")
def test_island_without_epci_000000000(files, run_import):
    out = run_import(**files.options())

    assert not EPCI.objects.filter(siren="000000000").exists()
    assert not EPCI.objects.filter(nom="Sans objet").exists()
    ouessant = Commune.objects.get(code="29155")
    assert ouessant.epci is None
    assert ouessant.siren == "212901557"
    assert "29155 Ouessant : commune isolée, sans EPCI" in out
    assert "commune isolée, sans EPCI" in ImportRun.objects.get().report


@pytest.mark.usefixtures("empty_base")
def test_cog_commune_without_siren_row_is_created_without_epci_and_reported(files, run_import):
    out = run_import(**files.options())

    nouvelle = Commune.objects.get(code="60694")
    assert (nouvelle.nom, nouvelle.departement_id, nouvelle.epci, nouvelle.siren) == (
        "Les Hauts-Talican",
        "60",
        None,
        "",
    )
    assert "Commune du COG absente du fichier SIREN : 1" in out
    assert "60694 Les Hauts-Talican (COG, ligne 7) : créée sans EPCI ni SIREN" in out


@pytest.mark.usefixtures("empty_base")
def test_siren_row_not_in_cog_is_skipped_and_reported(files, run_import):
    out = run_import(**files.options())

    assert not Commune.objects.filter(code="75101").exists()
    assert not Region.objects.filter(code="11").exists()
    # Its EPCI is named only by rows outside the COG: not created.
    assert not EPCI.objects.filter(siren="200054781").exists()
    assert "SIREN, communes absentes du COG : 1" in out
    assert "75101 Paris 1er Arrondissement (fichier SIREN, ligne 7)" in out


@pytest.mark.usefixtures("empty_base")
def test_population_of_unknown_commune_is_reported(files, run_import):
    out = run_import(**files.options())

    assert not Commune.objects.filter(code="01001").exists()
    assert "01001 (fichier des populations, ligne 5)" in out


@pytest.mark.usefixtures("empty_base")
def test_rerun_is_idempotent(files, run_import):
    run_import(**files.options())
    before = snapshot()

    out = run_import(**files.options())

    after = snapshot()
    assert after.pop("ImportRun") == before.pop("ImportRun") + 1
    assert after == before
    second = ImportRun.objects.order_by("-pk").first()
    assert (second.created, second.updated, second.unchanged) == (0, 0, 18)
    assert "Communes : 0 créée, 0 mise à jour, 6 inchangées" in out
    assert "EPCI : 0 créé, 0 mis à jour, 3 inchangés" in out


@pytest.mark.usefixtures("empty_base")
def test_epci_renamed_under_same_siren_is_updated(files, run_import):
    run_import(**files.options())
    rows = siren_rows()
    for row in rows:
        if row[3] == "200066744":
            row[4] = "Communauté de communes Haute-Corrèze"
    files.write_siren(rows)

    out = run_import(**files.options())

    assert EPCI.objects.count() == 3
    hcc = EPCI.objects.get(siren="200066744")
    assert (hcc.nom, hcc.nature) == ("Communauté de communes Haute-Corrèze", "CC")
    assert Commune.objects.get(code="19275").epci_id == "200066744"
    assert "EPCI : 0 créé, 1 mis à jour, 2 inchangés" in out
    assert "Communes : 0 créée, 0 mise à jour, 6 inchangées" in out


@pytest.mark.usefixtures("empty_base")
def test_commune_renamed_and_moved_to_another_epci(files, run_import):
    run_import(**files.options())
    rows = cog_rows()
    rows[0] = cog_row("19275", "75", "19", "Ussel-sur-Sarsonne")
    files.write_cog(rows)
    siren = siren_rows()
    siren[0][3:5] = ["200067999", "CA du Beauvaisis"]
    files.write_siren(siren)

    out = run_import(**files.options())

    ussel = Commune.objects.get(code="19275")
    assert (ussel.nom, ussel.nom_recherche, ussel.epci_id) == (
        "Ussel-sur-Sarsonne",
        "ussel sur sarsonne",
        "200067999",
    )
    assert "Communes : 0 créée, 1 mise à jour, 5 inchangées" in out


@pytest.mark.usefixtures("empty_base")
def test_population_update_and_communes_absent_from_the_file_keep_theirs(files, run_import):
    run_import(**files.options())
    files.write_populations(
        [
            ["75", "19", "19275", "Ussel", "9\u00a0800", "388", "10 188"],  # no-break space
            ["94", "2A", "2A004", "Ajaccio", "70659", "1000", "71659"],
        ]
    )

    out = run_import(**files.options())

    assert Commune.objects.get(code="19275").population == 9800
    assert Commune.objects.get(code="23067").population == 769  # not in the file: kept
    assert Commune.objects.get(code="2A004").population == 70659
    assert "Communes : 0 créée, 1 mise à jour, 5 inchangées" in out
    assert "23067 La Courtine : population inchangée" in out

    # Without a populations file, populations are left as they are.
    out = run_import(**files.options(populations=False))
    assert Commune.objects.get(code="19275").population == 9800
    assert "Fichier des populations : non fourni" in out
    assert "Communes : 0 créée, 0 mise à jour, 6 inchangées" in out


@pytest.mark.usefixtures("empty_base")
def test_commune_absent_from_cog_is_kept_and_reported(files, run_import):
    run_import(**files.options())
    files.write_cog([row for row in cog_rows() if row[1] != "23067"])
    files.write_siren([row for row in siren_rows() if row[0] != "23067"])

    out = run_import(**files.options())

    assert Commune.objects.filter(code="23067").exists()
    assert Departement.objects.filter(code="23").exists()
    assert "23067 La Courtine : absente du COG" in out
    assert "département 23 Creuse" in out


@pytest.mark.usefixtures("empty_base")
def test_existing_commune_absent_from_siren_file_keeps_its_epci(files, run_import):
    run_import(**files.options())
    # Guéret keeps the Creuse named: a département no SIREN row names is an error.
    files.write_cog([*cog_rows(), cog_row("23096", "75", "23", "Guéret")])
    gueret = siren_row(
        "23096", "Guéret", "212300964", ("200034825", "CA du Grand Guéret"),
        ("222300010", "Creuse"), ("200053759", "Nouvelle-Aquitaine"),
    )  # fmt: skip
    files.write_siren([row for row in siren_rows() if row[0] != "23067"] + [gueret])

    out = run_import(**files.options())

    courtine = Commune.objects.get(code="23067")
    assert (courtine.epci_id, courtine.siren) == ("200066744", "212300675")
    assert "23067 La Courtine (COG, ligne 4) : EPCI et SIREN laissés tels quels" in out


@pytest.mark.usefixtures("empty_base")
def test_columns_are_found_by_name_in_any_order_with_extra_columns(files, run_import):
    header = ["COM", "Commune", "Région", "PTOT", "PMUN", "REG", "DEP"]
    files.write_populations(
        [["19275", "Ussel", "Nouvelle-Aquitaine", "10 124", "9 736", "75", "19"]], header=header
    )

    run_import(**files.options())

    assert Commune.objects.get(code="19275").population == 9736
    # and the COG may come with a BOM and its columns in another order
    rows = [[r[9], r[1], r[0], r[3], r[2]] for r in cog_rows()]
    files.cog.write_text(
        "\ufeffLIBELLE,COM,TYPECOM,DEP,REG\n" + "\n".join(",".join(r) for r in rows) + "\n",
        encoding="utf-8",
    )
    out = run_import(**files.options(populations=False))
    assert "Communes : 0 créée, 0 mise à jour, 6 inchangées" in out


# --------------------------------------------------------------------------------------
# Malformed files: CommandError naming file, line and column, and nothing changed
# --------------------------------------------------------------------------------------


def _bad_cog_code(files):
    rows = cog_rows()
    rows[0] = cog_row("19275", "75", "19", "Ussel-Renommée")  # a valid change before the fault
    rows[2] = cog_row("1A00", "75", "23", "La Courtine")
    return files.write_cog(rows, name="communes_2024.csv")


def _missing_cog_column(files):
    header = [c for c in COG_HEADER if c != "LIBELLE"]
    rows = [[v for i, v in enumerate(r) if COG_HEADER[i] != "LIBELLE"] for r in cog_rows()]
    return files.write_cog(rows, header=header)


def _empty_dep(files):
    rows = cog_rows()
    rows[3][3] = ""
    return files.write_cog(rows)


def _unknown_typecom(files):
    rows = cog_rows()
    rows[1][0] = "XYZ"
    return files.write_cog(rows)


def _department_without_name(files):
    rows = [*cog_rows(), cog_row("87085", "75", "87", "Limoges")]
    return files.write_cog(rows)


def _empty_cog(files):
    files.cog.write_bytes(b"")
    return files.cog


def _latin1_cog(files):
    files.write_cog(cog_rows())
    files.cog.write_bytes(files.cog.read_text(encoding="utf-8").encode("latin-1"))
    return files.cog


def _short_cog_row(files):
    files.write_cog(cog_rows())
    with files.cog.open("a", encoding="utf-8") as handle:
        handle.write('"COM","87085","75"\r\n')
    return files.cog


def _bad_siren_code(files):
    rows = siren_rows()
    rows[4][0] = "2C004"
    return files.write_siren(rows)


def _bad_epci_siren(files):
    rows = siren_rows()
    rows[1][3] = "20006674"
    return files.write_siren(rows)


def _empty_epci_name(files):
    rows = siren_rows()
    rows[3][4] = " "
    return files.write_siren(rows)


def _wrong_siren_delimiter(files):
    return files.write_siren(siren_rows(), delimiter="|")


def _non_numeric_pmun(files):
    rows = [
        ["75", "19", "19275", "Ussel", "9800", "388", "10188"],
        ["75", "23", "23067", "La Courtine", "12a", "8", "20"],
    ]
    return files.write_populations(rows)


def _badly_grouped_pmun(files):
    rows = [["75", "19", "19275", "Ussel", "97 36", "388", "10124"]]
    return files.write_populations(rows)


def _empty_pmun(files):
    rows = [["75", "19", "19275", "Ussel", "", "388", "10124"]]
    return files.write_populations(rows)


def _missing_pmun_column(files):
    header = [c if c != "PMUN" else "POP" for c in POPULATIONS_HEADER]
    return files.write_populations([["75", "19", "19275", "Ussel", "1", "2", "3"]], header=header)


def _empty_populations(files):
    files.populations.write_text("", encoding="utf-8")
    return files.populations


def _header_only_populations(files):
    return files.write_populations([])


def _populations_names_in_com(files):
    # INSEE's own layout: COM holds the name, the code is DEP + CODCOM.
    header = ["REG", "DEP", "CODCOM", "COM", "PMUN", "PCAP", "PTOT"]
    return files.write_populations([["75", "19", "275", "Ussel", "9736", "388", "10124"]], header)


MALFORMED = {
    # case: (make the bad file, line, column, words of the message)
    "code INSEE invalide": (_bad_cog_code, 4, "COM", "code INSEE invalide « 1A00 »"),
    "colonne absente": (_missing_cog_column, 1, "LIBELLE", "colonne obligatoire absente"),
    "DEP vide": (_empty_dep, 5, "DEP", "valeur obligatoire manquante"),
    "TYPECOM inconnu": (_unknown_typecom, 3, "TYPECOM", "type de commune inconnu « XYZ »"),
    "département sans nom": (_department_without_name, 9, "DEP", "département « 87 » sans nom"),
    "COG vide": (_empty_cog, 1, "TYPECOM", "fichier vide"),
    "COG en latin-1": (_latin1_cog, 3, None, "encodage invalide"),
    "ligne COG incomplète": (_short_cog_row, 9, "DEP", "3 champs au lieu de 12"),
    "code INSEE SIREN": (_bad_siren_code, 6, "com_code", "code INSEE invalide « 2C004 »"),
    "SIREN d'EPCI": (_bad_epci_siren, 3, "epci_siren", "SIREN d'EPCI invalide « 20006674 »"),
    "nom d'EPCI vide": (_empty_epci_name, 5, "epci_name", "valeur obligatoire manquante"),
    "mauvais séparateur": (_wrong_siren_delimiter, 1, "com_code", "colonne obligatoire absente"),
    "PMUN non numérique": (_non_numeric_pmun, 3, "PMUN", "population municipale invalide « 12a »"),
    "PMUN mal groupé": (_badly_grouped_pmun, 2, "PMUN", "population municipale invalide"),
    "PMUN vide": (_empty_pmun, 2, "PMUN", "valeur obligatoire manquante"),
    "colonne PMUN absente": (_missing_pmun_column, 1, "PMUN", "colonne obligatoire absente"),
    "populations vide": (_empty_populations, 1, "COM", "fichier vide"),
    "populations sans données": (_header_only_populations, 2, "COM", "aucune ligne de données"),
    "COM = nom (INSEE)": (_populations_names_in_com, 2, "COM", "code INSEE invalide « Ussel »"),
}


@pytest.mark.usefixtures("empty_base")
@pytest.mark.parametrize("case", MALFORMED.keys())
def test_malformed_file_changes_nothing(files, run_import, case):
    run_import(**files.options())
    before = snapshot()
    make_bad_file, line, column, words = MALFORMED[case]
    bad = make_bad_file(files)

    with pytest.raises(CommandError) as raised:
        run_import(**files.options())

    message = str(raised.value)
    assert f"fichier {bad.name}" in message
    assert f"ligne {line}" in message
    if column:
        assert f"colonne « {column} »" in message
    assert words in message
    assert "base inchangée" in message
    assert snapshot() == before
    assert Commune.objects.get(code="19275").nom == "Ussel"


@pytest.mark.usefixtures("empty_base")
def test_error_message_reads_like_french(files, run_import):
    _bad_cog_code(files)
    with pytest.raises(CommandError) as raised:
        run_import(**files.options())
    assert str(raised.value).endswith(
        "fichier communes_2024.csv, ligne 4, colonne « COM » : code INSEE invalide « 1A00 »"
    )
    assert snapshot() == {
        "Region": [],
        "Departement": [],
        "EPCI": [],
        "Commune": [],
        "ImportRun": 0,
    }


@pytest.mark.usefixtures("empty_base")
def test_unreadable_file(files, run_import, tmp_path):
    run_import(**files.options())
    before = snapshot()
    options = files.options() | {"siren": str(tmp_path / "absent.csv")}

    with pytest.raises(CommandError, match=r"fichier absent\.csv : lecture impossible"):
        run_import(**options)
    with pytest.raises(CommandError, match=r"fichier [^ ]+ : lecture impossible"):
        run_import(**(files.options() | {"cog": str(tmp_path)}))  # a directory
    assert snapshot() == before


@pytest.mark.usefixtures("empty_base")
def test_failure_while_writing_rolls_everything_back(files, run_import, monkeypatch):
    run_import(**files.options())
    before = snapshot()
    files.write_siren(
        [
            [*r[:4], r[4] + " (nouveau nom)", *r[5:]] if r[3] != "000000000" else r
            for r in siren_rows()
        ]
    )

    def failing(real):
        def write(*args):
            if Commune in args:
                raise RuntimeError("panne de la base au milieu de l'import")
            return real(*args)

        return write

    for writer in ("_sync", "_merge"):  # the ORM's, then COPY's
        monkeypatch.setattr(territoires, writer, failing(getattr(territoires, writer)))
    with pytest.raises(RuntimeError):
        run_import(**files.options())

    assert snapshot() == before  # the EPCI renamed before the failure are rolled back


# --------------------------------------------------------------------------------------
# The CSV reader shared by the importers
# --------------------------------------------------------------------------------------


def test_reader_sniffs_or_takes_the_delimiter_and_counts_physical_lines(tmp_path):
    path = tmp_path / "ort.csv"
    path.write_text(
        'Commune;Remarques;Code commune\n\nUssel;"sur\ndeux lignes";19275\nTulle;;19272\n',
        encoding="utf-8-sig",
    )

    rows = list(read_rows(path, ["Code commune", "Commune"]))
    assert [(r.line, r["Code commune"], r["Remarques"]) for r in rows] == [
        (3, "19275", "sur\ndeux lignes"),
        (5, "19272", ""),
    ]

    with pytest.raises(ImportFileError) as raised:
        list(read_rows(path, ["Code commune"], delimiter=","))
    assert raised.value.line == 1
    assert raised.value.column == "Code commune"
    assert "séparateur virgule" in str(raised.value)


def test_reader_error_carries_file_line_and_column(tmp_path):
    path = tmp_path / "liste.csv"
    path.write_text("a,b\n1,2\n3,x\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as raised:
        for row in read_rows(path, ["b"]):
            row.integer("b")
    error = raised.value
    assert (error.file_name, error.line, error.column) == ("liste.csv", 3, "b")
    assert str(error) == (
        "fichier liste.csv, ligne 3, colonne « b » : nombre entier invalide « x » : "
        "un nombre entier est attendu"
    )


# --------------------------------------------------------------------------------------
# The real national files
# --------------------------------------------------------------------------------------

REAL = settings.REFERENCE_DATA_DIR
REAL_COG = REAL / "insee_cog_communes_2024-01-01.csv"
REAL_SIREN = REAL / "communes_epci_dep_reg_siren.csv"
REAL_POPULATIONS = REAL / "populations_communes.csv"


def _population_in_file(code: str) -> int | None:
    for row in read_rows(REAL_POPULATIONS, ["COM", "PMUN"]):
        if row["COM"] == code:
            return row.integer("PMUN")
    return None


@pytest.mark.realdata
@pytest.mark.usefixtures("empty_base")
@pytest.mark.skipif(not REAL.exists(), reason=f"données de référence absentes : {REAL}")
def test_real_national_files(run_import):
    options = {"cog": str(REAL_COG), "siren": str(REAL_SIREN), "populations": str(REAL_POPULATIONS)}
    out = run_import(**options)

    assert Commune.objects.count() == 34_935
    assert Departement.objects.count() == 101
    assert Region.objects.count() == 18
    assert EPCI.objects.count() == 1_255
    assert not EPCI.objects.filter(siren="000000000").exists()
    # every commune is linked to its département (the code starts with it)
    assert not Commune.objects.filter(departement__isnull=True).exists()
    for code, departement in Commune.objects.values_list("code", "departement_id"):
        assert code.startswith(departement), code
    assert Departement.objects.annotate(n=Count("communes")).filter(n=0).count() == 0

    without_epci = set(Commune.objects.filter(epci__isnull=True).values_list("code", flat=True))
    assert without_epci == {"60694", "85165", "85212", "22016", "29083", "29155", "85113"}

    courtine = Commune.objects.get(code="23067")
    assert (courtine.nom, courtine.departement_id, courtine.epci_id) == (
        "La Courtine",
        "23",
        "200066744",
    )
    ussel = Commune.objects.get(code="19275")
    expected = _population_in_file("19275")
    assert expected == 9736
    assert ussel.population == expected
    assert Commune.objects.filter(population__isnull=True).count() == 34_935 - 34_849
    assert Region.objects.get(code="06").siren == ""  # Mayotte: no région SIREN
    assert Departement.objects.get(code="2A").nom == "Corse-du-Sud"

    assert re.search(r"Communes : 34 935 créées", out)
    assert "SIREN, communes absentes du COG : 58" in out
    assert "Commune isolée, sans EPCI : 4" in out
    assert "Commune du COG absente du fichier SIREN : 3" in out
    assert "… et 38 autres" in out  # the stdout report is capped…
    run = ImportRun.objects.get()
    assert "Paris 20e Arrondissement" in run.report or "75120" in run.report  # …not the record
    assert run.created == 18 + 101 + 1_255 + 34_935
    assert run.skipped == 2_081 + 483 + 45 + 58

    before = snapshot()
    out = run_import(**options)
    assert snapshot() | {"ImportRun": 1} == before
    second = ImportRun.objects.order_by("-pk").first()
    assert (second.created, second.updated) == (0, 0)
    assert second.unchanged == 18 + 101 + 1_255 + 34_935
    assert "Communes : 0 créée, 0 mise à jour, 34 935 inchangées" in out
