"""Import the territories (régions, départements, EPCI, communes) from the official files.

Three steps, the database being touched only by the last one:

1. :func:`read_files` parses and checks every file completely (``cog``, ``siren``,
   ``populations`` modules); any fault raises :class:`ImportFileError`.
2. :func:`build_plan` joins them into the wanted state of each table, still without the
   database. Names of départements and régions come from the SIREN file joined on the
   commune code (the COG gives only their codes). A département or région of the COG
   that no SIREN row names is an error, not a guess: there is deliberately no fallback
   table of names to maintain.
3. :func:`apply_plan` compares the wanted state with the rows already in the database,
   field by field, and writes only the differences, in one transaction, then records an
   :class:`~pvd.models.ImportRun`. On PostgreSQL each table's wanted rows are streamed
   with ``COPY`` into a temporary staging table, then merged set-based (``UPDATE … FROM``
   where a field differs, ``INSERT … SELECT`` of the new keys): no model instance is built
   and the database compares the rows. Elsewhere (SQLite for ``make run``) the rows
   are compared in Python and written with ``bulk_create`` / ``bulk_update``.

What is not in the files is never deleted: a commune merged away (absent from the COG),
an EPCI that no commune names any more, a département or région absent from the COG are
left as they are and reported, because other data point at them. For the same reason, a
commune absent from the SIREN file keeps its SIREN and EPCI (a new one gets none), and a
commune absent from the populations file keeps its population.

Bulk operations skip ``save()`` and signals: ``Commune.nom_recherche`` is computed here,
and these changes do not go to the audit log (the ImportRun is the trace).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, models, transaction

from communes.models import EPCI, Commune, Departement, Region, normalize

from .cog import OTHER_TYPES, CogData, parse_cog
from .csvfile import ImportFileError, quote
from .populations import PopulationsData, parse_populations
from .report import REPORT_EXAMPLES, fmt, record_run, section_lines
from .siren import NO_EPCI_SIREN, SirenData, parse_siren

IMPORT_KIND = "territoires"
BATCH_SIZE = 2000

# Kinds of anomalies, in the order of the report.
ISOLEE = "Commune isolée, sans EPCI"
SANS_SIREN = "Commune du COG absente du fichier SIREN"
SIREN_HORS_COG = "Ligne du fichier SIREN ignorée : commune absente du COG"
POPULATION_HORS_COG = "Ligne du fichier des populations ignorée : commune absente du COG"
SANS_POPULATION = "Commune du COG absente du fichier des populations"
NOMS_MULTIPLES = "Plusieurs noms ou SIREN pour un même territoire dans le fichier SIREN"
COMMUNE_ABSENTE = "Commune absente du COG, laissée en base"
EPCI_ABSENT = "EPCI absent du fichier SIREN, laissé en base"
DEPARTEMENT_ABSENT = "Département ou région absent du COG, laissé en base"


class _Keep:
    """The commune keeps the value it has in the database (the file says nothing)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class Report:
    counts: dict[str, Counts] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    files: list[tuple[str, Path | None]] = field(default_factory=list)

    def add(self, kind: str, text: str) -> None:
        self.anomalies[kind].append(text)

    @property
    def created(self) -> int:
        return sum(c.created for c in self.counts.values())

    @property
    def updated(self) -> int:
        return sum(c.updated for c in self.counts.values())

    @property
    def unchanged(self) -> int:
        return sum(c.unchanged for c in self.counts.values())

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def render(self, limit: int | None = REPORT_EXAMPLES) -> str:
        """The report in French; ``limit`` examples per kind of anomaly (None: all)."""
        lines = ["Import des territoires"]
        for label, path in self.files:
            lines.append(f"  Fichier {label} : {path if path else 'non fourni'}")
        for label, counts in self.counts.items():
            feminine = label in {"Régions", "Communes"}
            lines.append(
                f"{label} : "
                f"{_participle(counts.created, 'créé', feminine)}, "
                f"{_participle(counts.updated, 'mis à jour', feminine)}, "
                f"{_participle(counts.unchanged, 'inchangé', feminine)}"
            )
        lines.append(f"Lignes ignorées : {fmt(self.skipped_total)}")
        for label, n in self.skipped.items():
            lines.append(f"  {label} : {fmt(n)}")
        detail = section_lines(self.anomalies, _ANOMALY_ORDER, limit)
        lines.append("Anomalies :" if detail else "Aucune anomalie.")
        return "\n".join(lines + detail)


_ANOMALY_ORDER = [
    ISOLEE,
    SANS_SIREN,
    SIREN_HORS_COG,
    POPULATION_HORS_COG,
    SANS_POPULATION,
    NOMS_MULTIPLES,
    COMMUNE_ABSENTE,
    EPCI_ABSENT,
    DEPARTEMENT_ABSENT,
]


def _participle(n: int, word: str, feminine: bool) -> str:
    if word == "mis à jour":
        word = "mises à jour" if feminine and n > 1 else "mise à jour" if feminine else "mis à jour"
        return f"{fmt(n)} {word}"
    word = word + ("e" if feminine else "") + ("s" if n > 1 else "")
    return f"{fmt(n)} {word}"


@dataclass
class Files:
    cog: CogData
    siren: SirenData
    populations: PopulationsData | None


@dataclass(frozen=True, slots=True)
class WantedCommune:
    nom: str
    departement: str
    siren: Any  # str, or KEEP
    epci: Any  # SIREN, None, or KEEP
    population: Any  # int, or KEEP


@dataclass
class Plan:
    """The state the files ask for, before looking at the database."""

    files: Files
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    departements: dict[str, dict[str, Any]] = field(default_factory=dict)
    epcis: dict[str, dict[str, Any]] = field(default_factory=dict)
    communes: dict[str, WantedCommune] = field(default_factory=dict)
    report: Report = field(default_factory=Report)


def read_files(cog: str | Path, siren: str | Path, populations: str | Path | None) -> Files:
    """Parse and check all the files before anything is written."""
    return Files(
        cog=parse_cog(cog),
        siren=parse_siren(siren),
        populations=parse_populations(populations) if populations else None,
    )


def _most_common(values: Counter[str], what: str, report: Report) -> str:
    """The value most rows give (the first one met on a tie); report the disagreement."""
    (chosen, _), *others = values.most_common()
    if others:
        listed = ", ".join(f"{quote(v)} × {fmt(n)}" for v, n in values.most_common())
        report.add(NOMS_MULTIPLES, f"{what} : {listed} ; retenu : {quote(chosen)}")
    return chosen


def build_plan(files: Files) -> Plan:
    """Join the files into the wanted rows; raise ImportFileError if a name is missing."""
    cog, siren, populations = files.cog, files.siren, files.populations
    plan = Plan(files)
    report = plan.report
    report.files = [
        ("COG", cog.path),
        ("SIREN", siren.path),
        ("des populations", populations.path if populations else None),
    ]

    # Names and SIRENs of départements, régions and EPCI: from the SIREN rows of the
    # communes of the COG only (rows of communes absent from the COG are ignored).
    dep_names: dict[str, Counter[str]] = defaultdict(Counter)
    dep_sirens: dict[str, Counter[str]] = defaultdict(Counter)
    reg_names: dict[str, Counter[str]] = defaultdict(Counter)
    reg_sirens: dict[str, Counter[str]] = defaultdict(Counter)
    epci_names: dict[str, Counter[str]] = defaultdict(Counter)
    for code, row in siren.rows.items():
        commune = cog.communes.get(code)
        if commune is None:
            report.add(
                SIREN_HORS_COG,
                f"{code} {row.commune_name} (fichier SIREN, ligne {row.line})".replace("  ", " "),
            )
            continue
        dep_names[commune.departement][row.dep_name] += 1
        dep_sirens[commune.departement][row.dep_siren] += 1
        reg_names[commune.region][row.reg_name] += 1
        reg_sirens[commune.region][row.reg_siren] += 1
        if row.epci_siren is not None:
            epci_names[row.epci_siren][row.epci_name] += 1

    for code in sorted(cog.regions):
        if code not in reg_names:
            raise _unnamed("région", code, "REG", "reg_name", cog.region_lines[code], files)
        plan.regions[code] = {
            "nom": _most_common(reg_names[code], f"région {code}, nom", report),
            "siren": _most_common(reg_sirens[code], f"région {code}, SIREN", report),
        }
    for code in sorted(cog.departements):
        if code not in dep_names:
            line = cog.departement_lines[code]
            raise _unnamed("département", code, "DEP", "dep_name", line, files)
        plan.departements[code] = {
            "nom": _most_common(dep_names[code], f"département {code}, nom", report),
            "region_id": cog.departements[code],
            "siren": _most_common(dep_sirens[code], f"département {code}, SIREN", report),
        }
    for epci_siren in sorted(epci_names):
        nom = _most_common(epci_names[epci_siren], f"EPCI {epci_siren}, nom", report)
        plan.epcis[epci_siren] = {"nom": nom, "nature": EPCI.nature_from_name(nom)}

    pops = populations.populations if populations else {}
    for code, commune in cog.communes.items():
        row = siren.rows.get(code)
        if row is None:
            commune_siren = epci = KEEP
        else:
            commune_siren, epci = row.commune_siren, row.epci_siren
            if epci is None:
                report.add(
                    ISOLEE,
                    f"{code} {commune.nom} : commune isolée, sans EPCI "
                    f"(fichier SIREN, ligne {row.line}, EPCI {NO_EPCI_SIREN} "
                    f"{quote(row.epci_name)})",
                )
        population = pops[code].population if code in pops else KEEP
        plan.communes[code] = WantedCommune(
            nom=commune.nom,
            departement=commune.departement,
            siren=commune_siren,
            epci=epci,
            population=population,
        )
    for code, population in pops.items():
        if code not in cog.communes:
            report.add(
                POPULATION_HORS_COG,
                f"{code} (fichier des populations, ligne {population.line})",
            )

    report.skipped = {
        f"COG, {label} ({typecom})": cog.skipped[typecom]
        for typecom, label in OTHER_TYPES.items()
        if cog.skipped[typecom]
    }
    report.skipped["SIREN, communes absentes du COG"] = len(report.anomalies[SIREN_HORS_COG])
    if populations is not None:
        report.skipped["populations, communes absentes du COG"] = len(
            report.anomalies[POPULATION_HORS_COG]
        )
    return plan


def _unnamed(what: str, code: str, column: str, name_column: str, line: int, files: Files):
    return ImportFileError(
        f"{what} {quote(code)} sans nom : aucune de ses communes n'est dans le fichier SIREN "
        f"{files.siren.path.name}, qui donne les noms (colonne {quote(name_column)})",
        path=files.cog.path,
        line=line,
        column=column,
    )


def _existing(model: type[models.Model], fields: list[str]) -> dict[str, tuple]:
    pk = model._meta.pk.attname
    return {row[0]: row[1:] for row in model.objects.values_list(pk, *fields).iterator(5000)}


def _sync(
    model: type[models.Model],
    fields: list[str],
    wanted: dict[str, dict[str, Any]],
    existing: dict[str, tuple],
) -> Counts:
    """Create the missing rows and update the changed ones; compare field by field."""
    pk = model._meta.pk.attname
    counts = Counts()
    to_create, to_update, changed_fields = [], [], set()
    for key, values in wanted.items():
        current = existing.get(key)
        if current is None:
            to_create.append(model(**{pk: key}, **values))
            continue
        changed = {name for name, old in zip(fields, current, strict=True) if values[name] != old}
        if changed:
            to_update.append(model(**{pk: key}, **values))
            changed_fields |= changed
        else:
            counts.unchanged += 1
    if to_create:
        model.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    if to_update:
        model.objects.bulk_update(to_update, sorted(changed_fields), batch_size=BATCH_SIZE)
    counts.created, counts.updated = len(to_create), len(to_update)
    return counts


def _absent(existing: Iterable[str], wanted: dict) -> list[str]:
    return sorted(key for key in existing if key not in wanted)


REGION_FIELDS = ["nom", "siren"]
DEPARTEMENT_FIELDS = ["nom", "region_id", "siren"]
EPCI_FIELDS = ["nom", "nature"]
COMMUNE_FIELDS = ["nom", "nom_recherche", "departement_id", "epci_id", "siren", "population"]


def apply_plan(plan: Plan) -> Report:
    """Write the plan to the database in one transaction and record the ImportRun."""
    report = plan.report
    with transaction.atomic():
        if uses_copy():
            _apply_with_copy(plan)
        else:
            _apply_with_orm(plan)
        record_run(
            IMPORT_KIND,
            "\n".join(str(path) for _, path in report.files if path),
            report,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            skipped=report.skipped_total,
        )
    return report


def uses_copy() -> bool:
    """COPY and the set-based merge are PostgreSQL's; SQLite (``make run``) uses the ORM."""
    return connection.vendor == "postgresql"


def _report_kept(plan: Plan, code: str, commune: WantedCommune, current: Any) -> None:
    """Report a commune that keeps its SIREN/EPCI or population (the files say nothing);
    ``current`` is its population in the database, or ``_NEW`` when it is created."""
    if commune.siren is KEEP:
        detail = (
            "créée sans EPCI ni SIREN" if current is _NEW else "EPCI et SIREN laissés tels quels"
        )
        line = plan.files.cog.communes[code].line
        plan.report.add(SANS_SIREN, f"{code} {commune.nom} (COG, ligne {line}) : {detail}")
    if commune.population is KEEP and plan.files.populations is not None:
        population = None if current is _NEW else current
        detail = "sans population" if population is None else "population inchangée"
        plan.report.add(SANS_POPULATION, f"{code} {commune.nom} : {detail}")


_NEW: Any = object()


# The ORM path: rows compared in Python -----------------------------------------------------


def _apply_with_orm(plan: Plan) -> None:
    report = plan.report
    existing = _existing(Region, REGION_FIELDS)
    report.counts["Régions"] = _sync(Region, REGION_FIELDS, plan.regions, existing)
    for code in _absent(existing, plan.regions):
        report.add(DEPARTEMENT_ABSENT, f"région {code} {existing[code][0]}")

    existing = _existing(Departement, DEPARTEMENT_FIELDS)
    report.counts["Départements"] = _sync(
        Departement, DEPARTEMENT_FIELDS, plan.departements, existing
    )
    for code in _absent(existing, plan.departements):
        report.add(DEPARTEMENT_ABSENT, f"département {code} {existing[code][0]}")

    existing = _existing(EPCI, EPCI_FIELDS)
    report.counts["EPCI"] = _sync(EPCI, EPCI_FIELDS, plan.epcis, existing)
    for siren in _absent(existing, plan.epcis):
        report.add(EPCI_ABSENT, f"{siren} {existing[siren][0]}")

    existing = _existing(Commune, COMMUNE_FIELDS)
    wanted = {}
    for code, commune in plan.communes.items():
        current = existing.get(code)
        siren, epci, population = commune.siren, commune.epci, commune.population
        if siren is KEEP:  # absent from the SIREN file
            siren, epci = ("", None) if current is None else (current[4], current[3])
        if population is KEEP:  # absent from the populations file, or no such file
            population = None if current is None else current[5]
        if commune.siren is KEEP or commune.population is KEEP:
            _report_kept(plan, code, commune, _NEW if current is None else current[5])
        wanted[code] = {
            "nom": commune.nom,
            "nom_recherche": normalize(commune.nom),
            "departement_id": commune.departement,
            "epci_id": epci,
            "siren": siren,
            "population": population,
        }
    report.counts["Communes"] = _sync(Commune, COMMUNE_FIELDS, wanted, existing)
    for code in _absent(existing, wanted):
        report.add(COMMUNE_ABSENTE, f"{code} {existing[code][0]} : absente du COG")


# The PostgreSQL path: COPY into a staging table, then one set-based merge ------------------


def _apply_with_copy(plan: Plan) -> None:
    report = plan.report
    with connection.cursor() as cursor:
        stage = _stage(
            cursor,
            Region,
            REGION_FIELDS,
            ((code, v["nom"], v["siren"]) for code, v in plan.regions.items()),
        )
        report.counts["Régions"], absent = _merge(cursor, Region, REGION_FIELDS, stage)
        for code, nom in absent:
            report.add(DEPARTEMENT_ABSENT, f"région {code} {nom}")

        rows = (
            (code, v["nom"], v["region_id"], v["siren"]) for code, v in plan.departements.items()
        )
        stage = _stage(cursor, Departement, DEPARTEMENT_FIELDS, rows)
        report.counts["Départements"], absent = _merge(
            cursor, Departement, DEPARTEMENT_FIELDS, stage
        )
        for code, nom in absent:
            report.add(DEPARTEMENT_ABSENT, f"département {code} {nom}")

        rows = ((siren, v["nom"], v["nature"]) for siren, v in plan.epcis.items())
        stage = _stage(cursor, EPCI, EPCI_FIELDS, rows)
        report.counts["EPCI"], absent = _merge(cursor, EPCI, EPCI_FIELDS, stage)
        for siren, nom in absent:
            report.add(EPCI_ABSENT, f"{siren} {nom}")

        rows = (
            (
                code,
                c.nom,
                normalize(c.nom),
                c.departement,
                None if c.siren is KEEP else c.epci,
                "" if c.siren is KEEP else c.siren,
                None if c.population is KEEP else c.population,
                c.siren is KEEP,
                c.population is KEEP,
            )
            for code, c in plan.communes.items()
        )
        stage = _stage(cursor, Commune, COMMUNE_FIELDS, rows, flags=KEEP_FLAGS)
        _keep_current_values(cursor, plan, stage)
        report.counts["Communes"], absent = _merge(cursor, Commune, COMMUNE_FIELDS, stage)
        for code, nom in absent:
            report.add(COMMUNE_ABSENTE, f"{code} {nom} : absente du COG")


KEEP_FLAGS = ("keep_siren", "keep_population")
NEW_FLAG = "is_new"


def _stage(cursor, model: type[models.Model], fields: list[str], rows, flags=()) -> str:
    """A temporary table shaped like ``model``'s key and ``fields`` (plus boolean
    ``flags``), filled by COPY from ``rows`` (tuples in that order; ``is_new`` is left to
    :func:`_merge`); its name."""
    qn = connection.ops.quote_name
    table = model._meta.db_table
    stage = qn(f"stage_{table}")
    columns = ", ".join(qn(c) for c in [model._meta.pk.column, *fields])
    extra = "".join(f", false AS {qn(flag)}" for flag in (*flags, NEW_FLAG))
    cursor.execute(f"DROP TABLE IF EXISTS {stage}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "
        f"SELECT {columns}{extra} FROM {qn(table)} WITH NO DATA"
    )
    names = ", ".join(qn(c) for c in [model._meta.pk.column, *fields, *flags])
    with cursor.cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    # Fresh statistics of the keys, or the planner may take a table analyzed while empty
    # for empty and join it in a nested loop: minutes instead of a second.
    key = qn(model._meta.pk.column)
    cursor.execute(f"ANALYZE {stage} ({key})")
    cursor.execute(f"ANALYZE {qn(table)} ({key})")
    return stage


def _keep_current_values(cursor, plan: Plan, stage: str) -> None:
    """Communes the files say nothing about keep their SIREN, EPCI or population: read
    them from the table into the staging rows, and report them in the COG's order."""
    table = connection.ops.quote_name(Commune._meta.db_table)
    cursor.execute(
        f"SELECT s.code, c.code IS NOT NULL, c.population FROM {stage} s "
        f"LEFT JOIN {table} c ON c.code = s.code WHERE s.keep_siren OR s.keep_population"
    )
    kept = {code: population if found else _NEW for code, found, population in cursor.fetchall()}
    if not kept:
        return
    cursor.execute(
        f"UPDATE {stage} s SET siren = c.siren, epci_id = c.epci_id FROM {table} c "
        "WHERE s.keep_siren AND c.code = s.code"
    )
    cursor.execute(
        f"UPDATE {stage} s SET population = c.population FROM {table} c "
        "WHERE s.keep_population AND c.code = s.code"
    )
    for code, commune in plan.communes.items():
        if code in kept:
            _report_kept(plan, code, commune, kept[code])


def _merge(
    cursor, model: type[models.Model], fields: list[str], stage: str
) -> tuple[Counts, list[tuple[str, str]]]:
    """Update the rows of ``model``'s table whose fields differ from their staged values,
    then insert the staged rows it lacks (set-based statements); the counts, and the
    (key, name) of the table's rows that are not staged (left in place), by key."""
    qn = connection.ops.quote_name
    table, pk = qn(model._meta.db_table), qn(model._meta.pk.column)
    columns = [qn(model._meta.get_field(name).column) for name in fields]
    cursor.execute(f"SELECT count(*) FROM {stage}")
    (total,) = cursor.fetchone()
    cursor.execute(
        f"SELECT t.{pk}, t.{qn('nom')} FROM {table} t WHERE NOT EXISTS "
        f'(SELECT FROM {stage} s WHERE s.{pk} = t.{pk}) ORDER BY t.{pk} COLLATE "C"'
    )
    absent = cursor.fetchall()
    staged = ", ".join(f"s.{c}" for c in columns)
    current = ", ".join(f"t.{c}" for c in columns)
    assignments = ", ".join(f"{c} = s.{c}" for c in columns)
    cursor.execute(
        f"UPDATE {table} t SET {assignments} FROM {stage} s "
        f"WHERE t.{pk} = s.{pk} AND ROW({staged}) IS DISTINCT FROM ROW({current})"
    )
    updated = cursor.rowcount
    # The new rows are marked before the insertion: an INSERT … SELECT that reads its own
    # target to skip existing keys would scan it again for each row.
    cursor.execute(
        f"UPDATE {stage} s SET {qn(NEW_FLAG)} = true "
        f"WHERE NOT EXISTS (SELECT FROM {table} t WHERE t.{pk} = s.{pk})"
    )
    names = ", ".join([pk, *columns])
    cursor.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} WHERE {qn(NEW_FLAG)}"
    )
    created = cursor.rowcount
    cursor.execute(f"DROP TABLE {stage}")
    return Counts(created, updated, total - created - updated), absent


def import_territoires(
    cog: str | Path, siren: str | Path, populations: str | Path | None = None
) -> Report:
    """Read, check, then apply the three files. Raises ImportFileError, changing nothing."""
    plan = build_plan(read_files(cog, siren, populations))
    return apply_plan(plan)
