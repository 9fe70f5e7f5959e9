"""Import the coordinates of the communes, for the map (``communes_coordonnees.csv``).

Columns, read by NAME: ``code_insee``, ``longitude_centre``, ``latitude_centre``,
``longitude_mairie``, ``latitude_mairie`` (WGS 84, decimal degrees, point as decimal
separator); ``nom`` and other columns are ignored (names come from the COG).

Three steps, as in the other importers:

1. :func:`parse_coordonnees` reads and checks the whole file, without the database: a
   value that is not a number, out of range (latitude beyond ±90, longitude beyond
   ±180), a half point (latitude without longitude) or a duplicated code raises
   :class:`ImportFileError` naming the file, the line and the column.
2. :func:`build_plan` loads the communes (code, département, current coordinates) in one
   query and decides, each rule a small function:

   - the point used is the commune's **centre**; the town-hall point is known to be wrong
     for about 220 communes (signs flipped, communes of the Meuse placed overseas), so it
     is used only when the file gives no centre, and only if it passes the check below;
   - a point must lie in its département, checked against a reference other than the file
     being imported: the département's bounding box vendored in ``departements_bbox.json``
     (made once from the official files, see ``scripts/departements_bbox.py``), or, for a
     département it lacks, within :data:`MAX_KM_FROM_PREVIOUS` of the commune's previous
     point. A point that fails is not imported, and reported; when more than
     :data:`MAX_OUTSIDE_SHARE` of the lines (and more than :data:`MAX_OUTSIDE_LINES`)
     fail, the whole file is refused, with the count and examples (a file with longitude
     and latitude swapped: every point fails);
   - a town hall more than :data:`MAX_KM_MAIRIE_CENTRE` from the centre is reported (the
     centre is used anyway);
   - codes of the file unknown to the territorial reference, and communes of the
     reference absent from the file (communes nouvelles of a later COG), are reported.

3. :func:`apply_plan` writes the differences (one UPDATE per batch) in the transaction opened
   by :func:`import_coordonnees`, and records an :class:`~pvd.models.ImportRun`.

A commune of the reference that the file omits keeps the coordinates it has.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.db import connection, transaction

from communes.models import Commune

from .cog import COMMUNE_CODE
from .csvfile import ImportFileError, quote, read_rows
from .report import Report, fmt, record_run

IMPORT_KIND = "coordonnees"
BATCH_SIZE = 2000
COLUMNS = (
    "code_insee",
    "longitude_centre",
    "latitude_centre",
    "longitude_mairie",
    "latitude_mairie",
)
MAX_KM_FROM_PREVIOUS = 250
BOXES_FILE = Path(__file__).with_name("departements_bbox.json")
# A file with this share of its points out of their département (and more than this many)
# is wrong as a whole (columns swapped, another projection): nothing is imported.
MAX_OUTSIDE_SHARE = 0.05
MAX_OUTSIDE_LINES = 10
MAX_KM_MAIRIE_CENTRE = 20
EARTH_RADIUS_KM = 6371.0
NAN = "nan"
DECIMAL = re.compile(r"^[+-]?\d{1,3}(?:\.\d+)?$", re.ASCII)

# Sections of the report, in its order.
HORS_DEPARTEMENT = "Point hors de son département, non importé"
MAIRIE_ELOIGNEE = f"Mairie à plus de {MAX_KM_MAIRIE_CENTRE} km du centre (centre retenu)"
SANS_CENTRE = "Centre absent du fichier : mairie retenue"
SANS_POINT = "Aucun point utilisable : commune laissée hors de la carte"
INCONNUE = "Code du fichier absent du référentiel territorial, ignoré"
ABSENTE = "Commune du référentiel absente du fichier, laissée telle quelle"
VALEUR_NAN = "Valeur « nan » lue comme absente"
ORDER = [
    HORS_DEPARTEMENT,
    SANS_POINT,
    SANS_CENTRE,
    MAIRIE_ELOIGNEE,
    INCONNUE,
    ABSENTE,
    VALEUR_NAN,
]

REFERENCE_VIDE = "Importez d'abord le référentiel territorial (import_territoires)."
FICHIER_REFUSE = (
    "{count} points sur {total} lignes hors de l'emprise de leur département{swap} ; "
    "exemples : {examples}"
)
INVERSES = " (longitude et latitude inversées ? {count} y seraient une fois échangées)"


class CoordonneesImportError(Exception):
    """The file cannot be imported for a reason that is not a fault of the file."""


Point = tuple[float, float]  # (longitude, latitude)


@dataclass(frozen=True, slots=True)
class Ligne:
    code: str
    nom: str
    centre: Point | None
    mairie: Point | None
    line: int


@dataclass
class CoordonneesData:
    path: Path
    lignes: dict[str, Ligne] = field(default_factory=dict)
    nan: list[str] = field(default_factory=list)  # cells « nan », read as empty


def _coordinate(row, column: str, limit: int, what: str, data: CoordonneesData) -> float | None:
    value = row[column]
    if not value:
        return None
    if value.lower() == NAN:
        # A spreadsheet's or pandas' empty number (2 town halls of the real file).
        data.nan.append(f"ligne {row.line}, colonne {quote(column)}")
        return None
    if not DECIMAL.match(value):
        raise row.error(
            column,
            f"{what} invalide {quote(value)} : un nombre décimal (point décimal) est attendu",
        )
    number = float(value)
    if not -limit <= number <= limit:
        raise row.error(column, f"{what} hors limites {quote(value)} (entre -{limit} et {limit})")
    return number


def _point(row, kind: str, data: CoordonneesData) -> Point | None:
    longitude = _coordinate(row, f"longitude_{kind}", 180, "longitude", data)
    latitude = _coordinate(row, f"latitude_{kind}", 90, "latitude", data)
    if (longitude is None) != (latitude is None):
        missing = f"latitude_{kind}" if latitude is None else f"longitude_{kind}"
        raise row.error(missing, "coordonnée manquante : la longitude et la latitude vont ensemble")
    return None if longitude is None else (longitude, latitude)


def parse_coordonnees(path: str | Path) -> CoordonneesData:
    """Read and check the whole file; raise :class:`ImportFileError` on the first fault."""
    data = CoordonneesData(Path(path))
    for row in read_rows(path, COLUMNS):
        code = row.matching("code_insee", COMMUNE_CODE, "code INSEE")
        if code in data.lignes:
            raise row.error(
                "code_insee",
                f"code INSEE {quote(code)} en double (déjà ligne {data.lignes[code].line})",
            )
        data.lignes[code] = Ligne(
            code,
            row.get("nom")[:200],
            _point(row, "centre", data),
            _point(row, "mairie", data),
            row.line,
        )
    if not data.lignes:
        raise ImportFileError(
            "aucune ligne de données après l'en-tête", path=path, line=2, column="code_insee"
        )
    return data


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance between two (longitude, latitude) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


Box = tuple[float, float, float, float]  # west, south, east, north


@cache
def departement_boxes() -> dict[str, Box]:
    """The vendored bounding box of each département (not taken from the imported file)."""
    boxes = json.loads(BOXES_FILE.read_text(encoding="utf-8"))["departements"]
    return {dep: tuple(box) for dep, box in boxes.items()}


def reference_box(dep: str, previous: Point | None) -> Box | None:
    """The département's box; without one, a box around the commune's previous point."""
    box = departement_boxes().get(dep)
    if box is None and previous is not None:
        lon, lat = previous
        dlat = MAX_KM_FROM_PREVIOUS / 111.2
        dlon = dlat / max(math.cos(math.radians(lat)), 0.1)
        box = (lon - dlon, lat - dlat, lon + dlon, lat + dlat)
    return box


def in_departement(point: Point, box: Box | None) -> bool:
    return box is not None and box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _where(ligne: Ligne, point: Point) -> str:
    return f"{ligne.code} {ligne.nom} (ligne {ligne.line}) : {point[1]:.5f}, {point[0]:.5f}"


def choose_point(ligne: Ligne, box: Box | None, report: Report) -> Point | None:
    """The centre if it is in the département, else the town hall if the file has no centre."""
    if ligne.centre is not None:
        if ligne.mairie is not None:
            far = distance_km(ligne.centre, ligne.mairie)
            if far > MAX_KM_MAIRIE_CENTRE:
                where = f"{ligne.code} {ligne.nom} (ligne {ligne.line})"
                report.add(MAIRIE_ELOIGNEE, f"{where} : mairie à {fmt(round(far))} km")
        if in_departement(ligne.centre, box):
            return ligne.centre
        report.add(HORS_DEPARTEMENT, f"centre de {_where(ligne, ligne.centre)}")
        return None
    if ligne.mairie is None:
        report.add(SANS_POINT, f"{ligne.code} {ligne.nom} (ligne {ligne.line})")
        return None
    if in_departement(ligne.mairie, box):
        report.add(SANS_CENTRE, f"{ligne.code} {ligne.nom} (ligne {ligne.line})")
        return ligne.mairie
    report.add(HORS_DEPARTEMENT, f"mairie de {_where(ligne, ligne.mairie)}")
    return None


# --------------------------------------------------------------------------------------
# Plan and apply
# --------------------------------------------------------------------------------------


@dataclass
class Plan:
    data: CoordonneesData
    report: Report
    changes: dict[str, Point] = field(default_factory=dict)  # code -> (longitude, latitude)
    unchanged: int = 0
    skipped: int = 0


def build_plan(data: CoordonneesData) -> Plan:
    """Decide every commune's point; reads the communes in one query, writes nothing."""
    existing = {
        code: (dep, lon, lat, nom)
        for code, dep, lon, lat, nom in Commune.objects.values_list(
            "code", "departement_id", "longitude", "latitude", "nom"
        )
    }
    if not existing:
        raise CoordonneesImportError(REFERENCE_VIDE)
    report = Report(order=ORDER)
    plan = Plan(data, report)
    swapped = 0  # points out of their box that would be in it, longitude and latitude swapped
    for code, ligne in data.lignes.items():
        if code not in existing:
            report.add(INCONNUE, f"{code} {ligne.nom} (ligne {ligne.line})")
            plan.skipped += 1
            continue
        dep, lon, lat, _ = existing[code]
        box = reference_box(dep, None if lon is None or lat is None else (lon, lat))
        point = choose_point(ligne, box, report)
        tried = ligne.centre or ligne.mairie
        if point is None and tried is not None and in_departement(tried[::-1], box):
            swapped += 1
        if point is None:
            plan.skipped += 1
        elif point == (lon, lat):
            plan.unchanged += 1
        else:
            plan.changes[code] = point
    for code in sorted(existing.keys() - data.lignes.keys()):
        report.add(ABSENTE, f"{code} {existing[code][3]}")
    for where in data.nan:
        report.add(VALEUR_NAN, where)
    refuse_if_mostly_outside(plan, swapped)
    return plan


def refuse_if_mostly_outside(plan: Plan, swapped: int) -> None:
    outside = plan.report.sections.get(HORS_DEPARTEMENT, [])
    total = len(plan.data.lignes)
    if len(outside) <= max(MAX_OUTSIDE_LINES, MAX_OUTSIDE_SHARE * total):
        return
    raise CoordonneesImportError(
        FICHIER_REFUSE.format(
            count=fmt(len(outside)),
            total=fmt(total),
            swap=INVERSES.format(count=fmt(swapped)) if swapped > len(outside) // 2 else "",
            examples=" ; ".join(outside[:5]),
        )
    )


def update_points(points: list[tuple[str, Point]]) -> None:
    """UPDATE … FROM (VALUES …) by batches: ``bulk_update``'s CASE per row takes a minute
    for the 35,000 communes, this a second."""
    table = connection.ops.quote_name(Commune._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # The embedded SQLite demo (make run): one prepared UPDATE per commune, run by
            # executemany in the importer's transaction (a second for the 35,000 too).
            cursor.executemany(
                f"UPDATE {table} SET longitude = %s, latitude = %s WHERE code = %s",
                [(lon, lat, code) for code, (lon, lat) in points],
            )
            return
        for start in range(0, len(points), BATCH_SIZE):
            batch = points[start : start + BATCH_SIZE]
            values = ", ".join(["(%s, %s::double precision, %s::double precision)"] * len(batch))
            params = [v for code, (lon, lat) in batch for v in (code, lon, lat)]
            cursor.execute(
                f"UPDATE {table} AS c SET longitude = v.lon, latitude = v.lat "
                f"FROM (VALUES {values}) AS v(code, lon, lat) WHERE c.code = v.code",
                params,
            )


def apply_plan(plan: Plan) -> Report:
    update_points(sorted(plan.changes.items()))
    report = plan.report
    report.header = [f"Coordonnées des communes : {plan.data.path.name}"]
    report.counts = {
        "Lignes lues": len(plan.data.lignes),
        "Communes placées ou déplacées": len(plan.changes),
        "Communes inchangées": plan.unchanged,
        "Lignes non importées": plan.skipped,
    }
    report.footer = [
        "Point retenu : le centre de la commune (la mairie seulement sans centre), "
        "dans l'emprise de référence de son département (departements_bbox.json)."
    ]
    record_run(
        IMPORT_KIND,
        plan.data.path.name,
        report,
        created=0,
        updated=len(plan.changes),
        unchanged=plan.unchanged,
        skipped=plan.skipped,
    )
    return report


def import_coordonnees(path: str | Path) -> Report:
    """Read, plan and apply, all or nothing."""
    data = parse_coordonnees(path)
    with transaction.atomic():
        return apply_plan(build_plan(data))
