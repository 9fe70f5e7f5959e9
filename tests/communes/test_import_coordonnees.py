"""python manage.py import_coordonnees: hand-made files, malformed files, the real file."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from communes.importers import coordonnees
from communes.models import Commune
from pvd.models import ImportRun

from .conftest import write_csv

HEADER = [
    "code_insee",
    "nom",
    "longitude_centre",
    "latitude_centre",
    "longitude_mairie",
    "latitude_mairie",
]
REAL = settings.REFERENCE_DATA_DIR
REAL_FILE = REAL / "communes_coordonnees.csv"
# Anse-Bertrand's town hall as the real file has it: the sign of the longitude flipped.
FLIPPED = ("61.49000", "16.47000")


def run(path) -> str:
    out = io.StringIO()
    call_command("import_coordonnees", str(path), stdout=out)
    return out.getvalue()


def coords() -> dict[str, tuple]:
    return {
        c: (lon, lat)
        for c, lon, lat in Commune.objects.values_list("code", "longitude", "latitude")
    }


def demo_rows() -> list[list[str]]:
    """Every demo commune, its centre moved 0.01° north, its town hall next to it."""
    return [
        [code, nom, f"{lon:.5f}", f"{lat + 0.01:.5f}", f"{lon + 0.002:.5f}", f"{lat:.5f}"]
        for code, nom, lon, lat in Commune.objects.values_list(
            "code", "nom", "longitude", "latitude"
        )
    ]


def replace(rows, code, **values) -> None:
    row = next(r for r in rows if r[0] == code)
    for column, value in values.items():
        row[HEADER.index(column)] = value


@pytest.mark.django_db
def test_small_file_centre_first_checked_and_reported(territoires, tmp_path):
    before = coords()
    rows = [r for r in demo_rows() if r[0] != "23067"]  # La Courtine: absent from the file
    replace(rows, "36001", longitude_mairie=FLIPPED[0], latitude_mairie=FLIPPED[1])
    replace(rows, "19028", longitude_centre="-61.49000", latitude_centre="16.47000")
    replace(rows, "36005", longitude_centre="", latitude_centre="")
    replace(rows, "36006", longitude_centre="", latitude_centre="", longitude_mairie="")
    replace(rows, "36006", latitude_mairie="")
    replace(rows, "36018", longitude_mairie="nan", latitude_mairie="NaN")
    rows.append(["01001", "Abergement-Clémenciat", "4.92592", "46.15369", "", ""])
    path = write_csv(tmp_path / "communes_coordonnees.csv", HEADER, rows, ",")

    out = run(path)

    after = coords()
    ardentes = next(r for r in rows if r[0] == "36005")
    aigurande = next(r for r in rows if r[0] == "36001")
    # the centre, even when the town hall is far away
    assert after["36001"] == (float(aigurande[2]), float(aigurande[3]))
    # no centre: the town hall, being in its département
    assert after["36005"] == (float(ardentes[4]), float(ardentes[5]))
    # a centre outside the département, no point at all, absent: coordinates kept
    assert after["19028"] == before["19028"]
    assert after["36006"] == before["36006"]
    assert after["23067"] == before["23067"]
    assert not Commune.objects.filter(code="01001").exists()

    assert "Communes placées ou déplacées : 17" in out
    assert "Lignes non importées          : 3" in out
    assert "Point hors de son département, non importé : 1" in out
    assert "centre de 19028 Bort-les-Orgues (ligne " in out
    # Aigurande's town hall in the Atlantic, and Bort-les-Orgues' centre in Guadeloupe
    assert "Mairie à plus de 20 km du centre (centre retenu) : 2" in out
    assert "36001 Aigurande" in out
    assert "Centre absent du fichier : mairie retenue : 1" in out
    assert "Aucun point utilisable : commune laissée hors de la carte : 1" in out
    assert "01001 Abergement-Clémenciat" in out
    assert "Commune du référentiel absente du fichier, laissée telle quelle : 1" in out
    assert "23067 La Courtine" in out
    assert "Valeur « nan » lue comme absente : 2" in out

    record = ImportRun.objects.get(kind="coordonnees")
    assert (record.updated, record.unchanged, record.skipped) == (17, 0, 3)
    assert record.files == "communes_coordonnees.csv"

    out = run(path)
    assert coords() == after
    assert "Communes placées ou déplacées : 0" in out
    assert "Communes inchangées           : 17" in out


BAD = [
    ("latitude_centre", "abc", "ligne 3, colonne « latitude_centre » : latitude invalide « abc »"),
    ("latitude_centre", "46,5", "latitude invalide « 46,5 » : un nombre décimal (point décimal)"),
    ("latitude_centre", "95.1", "colonne « latitude_centre » : latitude hors limites « 95.1 »"),
    ("longitude_mairie", "-181", "longitude hors limites « -181 » (entre -180 et 180)"),
    ("latitude_centre", "", "colonne « latitude_centre » : coordonnée manquante"),
    ("code_insee", "1A001", "ligne 3, colonne « code_insee » : code INSEE invalide « 1A001 »"),
    ("code_insee", "36018", "code INSEE « 36018 » en double (déjà ligne 2)"),
    ("longitude_centre", "=HYPERLINK(1)", "longitude invalide « =HYPERLINK(1) »"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("column", "value", "message"), BAD)
def test_bad_row_imports_nothing(territoires, tmp_path, column, value, message):
    rows = [r for r in demo_rows() if r[0] in {"36018", "36001", "36005"}]
    rows.sort(key=lambda r: r[0] != "36018")  # 36018 on line 2, the bad row on line 3
    rows[1][HEADER.index(column)] = value
    path = write_csv(tmp_path / "coordonnees.csv", HEADER, rows, ",")
    before = coords()
    with pytest.raises(CommandError) as error:
        run(path)
    text = str(error.value)
    assert text.startswith("Import annulé, base inchangée. fichier coordonnees.csv, ")
    assert message in text
    assert coords() == before
    assert not ImportRun.objects.filter(kind="coordonnees").exists()


@pytest.mark.django_db
def test_missing_column_and_empty_file(territoires, tmp_path):
    path = write_csv(tmp_path / "c.csv", HEADER[:-1], [["36018", "Blanc", "1", "46", "1"]], ",")
    with pytest.raises(CommandError, match=r"ligne 1, colonne « latitude_mairie » : colonne"):
        run(path)
    empty = write_csv(tmp_path / "vide.csv", HEADER, [], ",")
    with pytest.raises(CommandError, match="aucune ligne de données après l'en-tête"):
        run(empty)
    with pytest.raises(CommandError, match="lecture impossible"):
        run(tmp_path / "absent.csv")


@pytest.mark.django_db
def test_needs_the_territorial_reference(empty_base, tmp_path):
    path = write_csv(tmp_path / "c.csv", HEADER, [["36018", "Blanc", "1.1", "46.6", "", ""]], ",")
    with pytest.raises(CommandError, match=r"Importez d'abord le référentiel territorial"):
        run(path)


def test_distance_and_departement_rule():
    paris, lyon = (2.3522, 48.8566), (4.8357, 45.7640)
    assert 385 < coordonnees.distance_km(paris, lyon) < 395
    rhone = coordonnees.reference_box("69", None)  # vendored, not from the imported file
    assert coordonnees.in_departement(lyon, rhone)
    assert not coordonnees.in_departement(paris, rhone)
    assert not coordonnees.in_departement(lyon[::-1], rhone)  # swapped
    assert not coordonnees.in_departement(paris, None)
    # A département the vendored boxes lack: near the commune's previous point.
    assert coordonnees.in_departement(lyon, coordonnees.reference_box("99", (4.9, 45.8)))
    assert not coordonnees.in_departement(paris, coordonnees.reference_box("99", (4.9, 45.8)))
    assert coordonnees.reference_box("99", None) is None


def test_every_departement_of_the_reference_has_a_box_around_its_communes(territoires):
    boxes = coordonnees.departement_boxes()
    assert len(boxes) == 101
    for code, dep, lon, lat in Commune.objects.values_list(
        "code", "departement_id", "longitude", "latitude"
    ):
        assert coordonnees.in_departement((lon, lat), boxes[dep]), code


def real_rows_swapped(codes=None, limit=None) -> list[list[str]]:
    """Rows of the real file, longitude and latitude swapped in both points."""
    import csv

    with open(REAL_FILE, encoding="utf-8") as f:
        rows = [r for r in csv.reader(f)][1:]
    rows = [r for r in rows if codes is None or r[0] in codes][:limit]
    return [
        [code, nom, lat_c, lon_c, lat_m, lon_m] for code, nom, lon_c, lat_c, lon_m, lat_m in rows
    ]


@pytest.mark.django_db
@pytest.mark.skipif(not REAL_FILE.exists(), reason=f"données de référence absentes : {REAL}")
def test_a_file_with_longitude_and_latitude_swapped_is_refused(territoires, tmp_path):
    codes = set(Commune.objects.values_list("code", flat=True))
    rows = real_rows_swapped(codes)
    assert len(rows) > coordonnees.MAX_OUTSIDE_LINES
    path = write_csv(tmp_path / "inverse.csv", HEADER, rows, ",")
    before = coords()

    with pytest.raises(CommandError) as error:
        run(path)

    text = str(error.value)
    assert text.startswith("Import annulé, base inchangée. ")
    n = len(rows)
    assert f"{n} points sur {n} lignes hors de l'emprise de leur département" in text
    assert f"(longitude et latitude inversées ? {n} y seraient une fois échangées)" in text
    assert "exemples : centre de " in text and "19275 Ussel (ligne " in text
    assert coords() == before
    assert not ImportRun.objects.filter(kind="coordonnees").exists()


@pytest.mark.realdata
@pytest.mark.django_db
@pytest.mark.skipif(not REAL_FILE.exists(), reason=f"données de référence absentes : {REAL}")
def test_real_file(empty_base, tmp_path):
    call_command(
        "import_territoires",
        cog=str(REAL / "insee_cog_communes_2024-01-01.csv"),
        siren=str(REAL / "communes_epci_dep_reg_siren.csv"),
        stdout=io.StringIO(),
    )
    out = run(REAL_FILE)

    assert "Lignes lues                   : 34 875" in out
    assert "Communes placées ou déplacées : 34 867" in out
    # the 8 rows without a centre are communes that the COG 2024 no longer has
    assert "Code du fichier absent du référentiel territorial, ignoré : 8" in out
    assert "Commune du référentiel absente du fichier, laissée telle quelle : 68" in out
    assert "Mairie à plus de 20 km du centre (centre retenu) : 202" in out
    assert "Point hors de son département" not in out
    assert "Valeur « nan » lue comme absente : 4" in out  # 2 town halls
    assert Commune.objects.filter(latitude__isnull=True).count() == 68

    # Anse-Bertrand: its town hall is at +61.5 longitude in the file; the centre is used.
    lon, lat = Commune.objects.values_list("longitude", "latitude").get(code="97102")
    assert -61.6 < lon < -61.4 and 16.3 < lat < 16.6
    # every point lies in mainland France or its own overseas département
    for code, dep, lon, lat in Commune.objects.exclude(latitude=None).values_list(
        "code", "departement_id", "longitude", "latitude"
    ):
        if not dep.startswith("97"):
            assert -5.5 < lon < 9.7 and 41.3 < lat < 51.2, code
    ussel = Commune.objects.get(code="19275")
    assert (round(ussel.longitude, 1), round(ussel.latitude, 1)) == (2.3, 45.5)

    out = run(REAL_FILE)
    assert "Communes inchangées           : 34 867" in out

    # The same file's first 2,000 rows, longitude and latitude swapped: refused whole.
    before = coords()
    path = write_csv(tmp_path / "inverse.csv", HEADER, real_rows_swapped(limit=2000), ",")
    with pytest.raises(CommandError, match="2 000 points sur 2 000 lignes hors de l'emprise"):
        run(path)
    assert coords() == before
