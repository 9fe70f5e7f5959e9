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
   - a point must lie in its département: within :data:`MAX_KM_FROM_DEPARTEMENT` of the
     median of the centres of that département's communes (the widest, Guyane, spans
     about 230 km from its median; those of mainland France less than 110 km). A point
     that fails is not imported, and reported;
   - a town hall more than :data:`MAX_KM_MAIRIE_CENTRE` from the centre is reported (the
     centre is used anyway);
   - codes of the file unknown to the territorial reference, and communes of the
     reference absent from the file (communes nouvelles of a later COG), are reported.

3. :func:`apply_plan` writes the differences (one UPDATE per batch) in the transaction opened
   by :func:`import_coordonnees`, and records an :class:`~pvd.models.ImportRun`.

A commune of the reference that the file omits keeps the coordinates it has.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
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
MAX_KM_FROM_DEPARTEMENT = 250
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


def departement_medians(lignes: dict[str, Ligne], departements: dict[str, str]) -> dict[str, Point]:
    """Each département's median centre (longitude and latitude apart): robust to outliers."""
    centres: dict[str, list[Point]] = defaultdict(list)
    for code, ligne in lignes.items():
        if ligne.centre is not None and code in departements:
            centres[departements[code]].append(ligne.centre)
    return {
        dep: (statistics.median(p[0] for p in points), statistics.median(p[1] for p in points))
        for dep, points in centres.items()
    }


def in_departement(point: Point, median: Point | None) -> bool:
    return median is not None and distance_km(point, median) <= MAX_KM_FROM_DEPARTEMENT


def _where(ligne: Ligne, point: Point) -> str:
    return f"{ligne.code} {ligne.nom} (ligne {ligne.line}) : {point[1]:.5f}, {point[0]:.5f}"


def choose_point(ligne: Ligne, median: Point | None, report: Report) -> Point | None:
    """The centre if it is in the département, else the town hall if the file has no centre."""
    if ligne.centre is not None:
        if ligne.mairie is not None:
            far = distance_km(ligne.centre, ligne.mairie)
            if far > MAX_KM_MAIRIE_CENTRE:
                where = f"{ligne.code} {ligne.nom} (ligne {ligne.line})"
                report.add(MAIRIE_ELOIGNEE, f"{where} : mairie à {fmt(round(far))} km")
        if in_departement(ligne.centre, median):
            return ligne.centre
        report.add(HORS_DEPARTEMENT, f"centre de {_where(ligne, ligne.centre)}")
        return None
    if ligne.mairie is None:
        report.add(SANS_POINT, f"{ligne.code} {ligne.nom} (ligne {ligne.line})")
        return None
    if in_departement(ligne.mairie, median):
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
    departements = {code: row[0] for code, row in existing.items()}
    medians = departement_medians(data.lignes, departements)
    for code, ligne in data.lignes.items():
        if code not in existing:
            report.add(INCONNUE, f"{code} {ligne.nom} (ligne {ligne.line})")
            plan.skipped += 1
            continue
        dep, lon, lat, _ = existing[code]
        point = choose_point(ligne, medians.get(dep), report)
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
    return plan


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
        f"à moins de {MAX_KM_FROM_DEPARTEMENT} km du centre médian de son département."
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
