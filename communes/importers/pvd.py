"""Import ANCT's national list of the « Petites villes de demain » communes.

ANCT has published the list in three shapes, recognised by their COLUMNS (never by the
file name, see :data:`FORMATS`):

- ``liste2021``: the first list, of 22 January 2021. An ``id_pvd`` shared by several
  rows marks a *candidature groupée*: those communes form ONE beneficiary. The mayors'
  names and e-mails (``nom_maire``, ``mel_mairie``, ``site_mairie``) of the original file
  are accepted and never read.
- ``cog2023``: ANCT's commune ↔ programmes table on the COG 2023; the PVD communes are
  the rows with an ``id_pvd``, one id per commune (no grouping). The file carries no
  date: the list is dated 1 January 2023 (the COG it is built on) unless told otherwise.
- ``datagouv``: the current data.gouv.fr list, ``insee_com, lib_com, id_pvd,
  date_signature``. It carries no list date: ``date_liste`` must be given.

Each list is the complete national list at its date. Three steps:

1. :func:`parse_liste` reads and checks the whole file (``ImportFileError`` with file,
   line and column on the first fault), without the database.
2. :func:`build_plan` loads what the database holds (active memberships, ids of that
   list date) into dicts, a handful of queries, and decides everything: communes that
   join (new beneficiaries), communes that leave (absent from the list), beneficiaries
   withdrawn (no commune left), ids to record, signature dates. It writes nothing.
3. :func:`apply_plan` writes the plan, in the transaction opened by :func:`import_pvd`,
   and records an :class:`~pvd.models.ImportRun` with the full report.

Grouping is never merged nor split automatically: a group of the 2021 list that differs
from the communes of an existing beneficiary (those still on the list: the others leave)
is left alone and reported, for a person to decide. The ``cog2023`` and ``datagouv``
lists carry no grouping: a commune already in an active beneficiary stays in it, whatever
its new id.

What a person may look for in the audit trail goes through ``save()``: a commune that
leaves (its membership deactivated) and a beneficiary withdrawn (``change_statut``). The
bulk of the list is written in bulk, traced by the ImportRun report like the territories:
new beneficiaries (statut lauréat, with the two decisions ``enregistrer_proposition`` and
``change_statut("laureat")`` would have written), their memberships, the ids and the
signature dates.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from communes.models import (
    SEUIL_POPULATION,
    Beneficiaire,
    Commune,
    DecisionStatut,
    IdentifiantPVD,
    MembreBeneficiaire,
    normalize,
)

from .cog import COMMUNE_CODE
from .csvfile import CANDIDATE_DELIMITERS, ImportFileError, quote, read_rows
from .report import Report, fmt, record_run

IMPORT_KIND = "pvd"
BATCH_SIZE = 1000

ID_PVD_MAX_LENGTH = IdentifiantPVD._meta.get_field("id_pvd").max_length
NOM_MAX_LENGTH = Beneficiaire._meta.get_field("nom").max_length
ID_PVD = re.compile(r"^\S+$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)

# The template row of the 2021 file, left there by ANCT: reported, never imported.
TEMPLATE_CODE = "999999"
TEMPLATE_NAME = "Trifouilly-les-Oies"

REFERENCE_VIDE = "Importez d'abord le référentiel territorial (import_territoires)."


class PvdImportError(Exception):
    """The list cannot be imported for a reason that is not a fault of the file."""


# --------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    key: str
    label: str
    columns: tuple[str, ...]  # required, checked by name
    markers: frozenset[str]  # columns that only this format has
    default_date: date | None
    default_date_note: str
    grouped: bool  # a shared id_pvd marks a candidature groupée
    signatures: bool  # date_signature is read and stored
    every_row_is_pvd: bool  # False: only the rows with an id_pvd are PVD communes


LISTE2021 = Format(
    key="liste2021",
    label="liste ANCT du 22 janvier 2021",
    columns=tuple(
        "id_pvd insee_com lib_com lib_reg insee_dep lib_dep regroupement pop date_signature "
        "siren_epci lib_epci".split()
    ),
    markers=frozenset(
        "lib_reg insee_dep lib_dep regroupement pop siren_epci lib_epci "
        "nom_maire mel_mairie site_mairie".split()
    ),
    default_date=date(2021, 1, 22),
    default_date_note="date de publication de cette liste",
    grouped=True,
    signatures=False,
    every_row_is_pvd=True,
)
COG2023 = Format(
    key="cog2023",
    label="table ANCT communes ↔ programmes sur le COG 2023",
    columns=("insee_com", "lib_com", "id_pvd", "id_ti", "id_crte"),
    markers=frozenset(
        "id_ti id_crte id_acv id_ami id_fabp id_amm id_habinclus id_cite id_cde id_fs "
        "id_acv2 id_va id_site".split()
    ),
    default_date=date(2023, 1, 1),
    default_date_note=(
        "le fichier ne donne pas sa date : 1er janvier 2023, date du COG 2023 sur lequel "
        "il est établi"
    ),
    grouped=False,
    signatures=False,
    every_row_is_pvd=False,
)
DATAGOUV = Format(
    key="datagouv",
    label="liste data.gouv.fr des communes Petites villes de demain",
    columns=("insee_com", "lib_com", "id_pvd", "date_signature"),
    markers=frozenset(),
    default_date=None,
    default_date_note="",
    grouped=False,
    signatures=True,
    every_row_is_pvd=True,
)
FORMATS = (LISTE2021, COG2023, DATAGOUV)
PERSONAL_COLUMNS = ("nom_maire", "mel_mairie", "site_mairie")
_KNOWN_COLUMNS = {c for f in FORMATS for c in (*f.columns, *f.markers)}


def _expected_columns() -> str:
    sets = [
        f"{LISTE2021.label} : {', '.join(LISTE2021.columns)} "
        f"(plus, acceptées et ignorées : {', '.join(PERSONAL_COLUMNS)})",
        f"{COG2023.label} : {', '.join(COG2023.columns)}, …",
        f"{DATAGOUV.label} : exactement {', '.join(DATAGOUV.columns)}, dans n'importe quel ordre",
    ]
    return " ; ".join(f"{n}) {s}" for n, s in enumerate(sets, start=1))


def read_header(path: str | Path) -> tuple[list[str], str]:
    """The column names of the first line, and the delimiter that gives the known ones."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.readline()
    except OSError as exc:
        raise ImportFileError(f"lecture impossible ({exc.strerror or exc})", path=path) from exc
    try:
        line = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "encodage invalide : le fichier doit être enregistré en UTF-8", path=path, line=1
        ) from exc
    if not line.strip():
        raise ImportFileError(
            f"fichier vide : la ligne d'en-tête est absente. Colonnes attendues : "
            f"{_expected_columns()}",
            path=path,
            line=1,
        )

    def split(delimiter: str) -> list[str]:
        return [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]

    def score(delimiter: str) -> tuple[int, int]:
        names = split(delimiter)
        return len(_KNOWN_COLUMNS.intersection(names)), len(names)

    delimiter = max(CANDIDATE_DELIMITERS, key=score)
    return split(delimiter), delimiter


def detect_format(path: str | Path, header: list[str]) -> Format:
    """The format whose own columns the header has; ImportFileError if none or ambiguous.

    ``liste2021`` and ``cog2023`` are recognised by the columns only they have (so that a
    missing required column is then reported as such); ``datagouv`` has no column of its
    own: its header must hold nothing but its four columns.
    """
    names = set(header)
    matches = [f for f in (LISTE2021, COG2023) if names & f.markers]
    if len(matches) == 1:
        return matches[0]
    if not matches and names & {"insee_com", "id_pvd"} and names <= set(DATAGOUV.columns):
        return DATAGOUV
    raise ImportFileError(
        f"colonnes non reconnues ({', '.join(quote(c) for c in header[:20])}"
        f"{' …' if len(header) > 20 else ''}). Formats attendus : {_expected_columns()}",
        path=path,
        line=1,
    )


# --------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ligne:
    """A PVD commune of the file."""

    code: str
    nom: str  # lib_com, as written in the file (the report only)
    id_pvd: str  # '' when the list gives none
    date_signature: date | None
    line: int


@dataclass
class Liste:
    path: Path
    format: Format
    lignes: list[Ligne] = field(default_factory=list)
    modeles: list[str] = field(default_factory=list)  # template rows, for the report
    hors_pvd: int = 0  # cog2023: rows of communes that are not PVD


def _date(row, column: str) -> date | None:
    value = row[column]
    if not value:
        return None
    if ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise row.error(column, f"date invalide {quote(value)} : format attendu AAAA-MM-JJ")


def parse_liste(path: str | Path) -> Liste:
    """Read and check the whole file; raise :class:`ImportFileError` on the first fault."""
    path = Path(path)
    header, delimiter = read_header(path)
    liste = Liste(path, detect_format(path, header))
    layout = liste.format
    seen: dict[str, int] = {}
    for row in read_rows(path, layout.columns, delimiter=delimiter):
        id_pvd = row["id_pvd"]
        if id_pvd.upper() == "NA":
            id_pvd = ""
        if not layout.every_row_is_pvd and not id_pvd:
            liste.hors_pvd += 1
            continue
        if row["insee_com"] == TEMPLATE_CODE or row["lib_com"] == TEMPLATE_NAME:
            liste.modeles.append(
                f"ligne {row.line} : {row['insee_com']} {row['lib_com']} "
                f"(id_pvd {quote(id_pvd)}), ligne modèle du fichier ANCT"
            )
            continue
        code = row.matching("insee_com", COMMUNE_CODE, "code INSEE")
        if id_pvd and not ID_PVD.match(id_pvd):
            raise row.error("id_pvd", f"identifiant PVD invalide {quote(id_pvd)}")
        if len(id_pvd) > ID_PVD_MAX_LENGTH:
            raise row.error(
                "id_pvd",
                f"identifiant PVD trop long ({len(id_pvd)} caractères, "
                f"{ID_PVD_MAX_LENGTH} au plus)",
            )
        signature = _date(row, "date_signature") if layout.signatures else None
        if code in seen:
            raise row.error(
                "insee_com", f"code INSEE {quote(code)} en double (déjà ligne {seen[code]})"
            )
        seen[code] = row.line
        liste.lignes.append(Ligne(code, row["lib_com"], id_pvd, signature, row.line))
    if not liste.lignes:
        raise ImportFileError(
            "aucune commune PVD dans ce fichier : une liste vide ferait sortir toutes les "
            "communes du programme",
            path=path,
            line=2,
            column="id_pvd" if not layout.every_row_is_pvd else "insee_com",
        )
    return liste


def resolve_date(liste: Liste, date_liste: date | None) -> tuple[date, str]:
    """The date of the list and where it comes from; datagouv lists need it given."""
    if date_liste is not None:
        return date_liste, "donnée par --date-liste"
    if liste.format.default_date is None:
        raise PvdImportError(
            f"Le fichier {liste.path.name} est une {liste.format.label} "
            f"({', '.join(liste.format.columns)}), qui ne donne pas la date de la liste : "
            "indiquez-la avec --date-liste AAAA-MM-JJ (la date de publication du fichier "
            "sur data.gouv.fr)."
        )
    return (
        liste.format.default_date,
        f"par défaut pour ce format : {liste.format.default_date_note}",
    )


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------

# Sections of the report, in this order.
CREES = "Bénéficiaires créés"
EPCI_MULTIPLES = "Candidatures groupées sur plusieurs EPCI"
A_DECIDER = "Regroupements différents, à décider par une personne"
SORTIES = "Communes sorties du programme"
RETIRES = "Bénéficiaires retirés (plus aucune commune sur la liste)"
INCONNUS = "Codes INSEE inconnus du référentiel territorial, ignorés"
MODELE = "Ligne modèle ignorée"
SIGNATURES = "Dates de signature mises à jour"
IDS_SUPPRIMES = "Identifiants PVD de cette date supprimés (commune absente de la liste)"
_SECTION_ORDER = [
    A_DECIDER,
    SORTIES,
    RETIRES,
    INCONNUS,
    MODELE,
    EPCI_MULTIPLES,
    CREES,
    SIGNATURES,
    IDS_SUPPRIMES,
]


@dataclass(frozen=True, slots=True)
class CommuneInfo:
    code: str
    nom: str
    departement_id: str
    epci_id: str | None
    epci_nom: str
    population: int | None

    def __str__(self) -> str:
        return f"{self.code} {self.nom}"


@dataclass(frozen=True, slots=True)
class Membre:
    """An active membership, as loaded from the database."""

    pk: int
    commune: str
    commune_nom: str
    beneficiaire: int
    beneficiaire_nom: str
    date_signature: date | None
    population: int | None


@dataclass
class NouveauBeneficiaire:
    nom: str
    departement_id: str
    epci_id: str | None
    motif_epci_multiples: str
    justification_population: str
    communes: list[str]  # codes, most populous first
    signatures: dict[str, date | None]


@dataclass
class Plan:
    liste: Liste
    date_liste: date
    nouveaux: list[NouveauBeneficiaire] = field(default_factory=list)
    sorties: list[int] = field(default_factory=list)  # MembreBeneficiaire pks
    retraits: list[int] = field(default_factory=list)  # Beneficiaire pks
    signatures: dict[int, date] = field(default_factory=dict)  # MembreBeneficiaire pk -> date
    ids_crees: list[tuple[str, str]] = field(default_factory=list)  # (commune, id_pvd)
    ids_modifies: dict[int, str] = field(default_factory=dict)  # IdentifiantPVD pk -> id_pvd
    ids_supprimes: list[int] = field(default_factory=list)
    ids_inchanges: int = 0
    inchangees: int = 0  # communes already in the right active beneficiary
    a_decider: int = 0  # groups left for a person to decide
    inconnus: int = 0
    report: Report = field(default_factory=lambda: Report(order=_SECTION_ORDER))

    @property
    def d(self) -> str:
        return f"{self.date_liste:%d/%m/%Y}"

    @property
    def created(self) -> int:
        return len(self.nouveaux) + len(self.ids_crees)

    @property
    def updated(self) -> int:
        return (
            len(self.sorties)
            + len(self.retraits)
            + len(self.signatures)
            + len(self.ids_modifies)
            + len(self.ids_supprimes)
        )

    @property
    def skipped(self) -> int:
        return self.inconnus + len(self.liste.modeles)


def _sorted_communes(infos: list[CommuneInfo]) -> list[CommuneInfo]:
    return sorted(infos, key=lambda c: (-(c.population or 0), normalize(c.nom), c.code))


def _liste_of(infos: list[CommuneInfo]) -> str:
    return ", ".join(str(c) for c in infos)


def nouveau_beneficiaire(
    infos: list[CommuneInfo], signatures: dict[str, date | None], plan: Plan
) -> NouveauBeneficiaire:
    """Name, département and EPCI of a new beneficiary made of these communes."""
    communes = _sorted_communes(infos)
    main = communes[0]
    names = Counter(c.nom for c in communes)
    # Two communes of the same name (Le Pont-de-Beauvoisin, Isère and Savoie): say which.
    nom = " – ".join(
        f"{c.nom} ({c.departement_id})" if names[c.nom] > 1 else c.nom for c in communes
    )
    if len(nom) > NOM_MAX_LENGTH:
        nom = nom[: NOM_MAX_LENGTH - 1] + "…"
    epcis = Counter(c.epci_id for c in communes if c.epci_id)
    # Most communes' EPCI; on a tie, the one met first, i.e. that of the most populous.
    epci_id = epcis.most_common(1)[0][0] if epcis else None
    motif = ""
    if len({c.epci_id for c in communes}) > 1:
        by_epci: dict[str | None, list[CommuneInfo]] = defaultdict(list)
        for c in communes:
            by_epci[c.epci_id].append(c)
        parts = [
            f"{members[0].epci_nom + ' (' + siren + ')' if siren else 'sans EPCI'} : "
            f"{', '.join(c.nom for c in members)}"
            for siren, members in by_epci.items()
        ]
        motif = (
            f"Candidature groupée de la liste ANCT du {plan.d}, dont les communes "
            f"appartiennent à plusieurs EPCI ({' ; '.join(parts)})."
        )
        plan.report.add(EPCI_MULTIPLES, f"« {nom} » : {' ; '.join(parts)}")
    grandes = [c for c in communes if (c.population or 0) >= SEUIL_POPULATION]
    justification = ""
    if grandes:
        justification = (
            f"{', '.join(f'{c.nom} ({fmt(c.population)} habitants)' for c in grandes)} : "
            f"commune retenue par l'ANCT (liste ANCT du {plan.d})."
        )
    return NouveauBeneficiaire(
        nom=nom,
        departement_id=main.departement_id,
        epci_id=epci_id,
        motif_epci_multiples=motif,
        justification_population=justification,
        communes=[c.code for c in communes],
        signatures={c.code: signatures.get(c.code) for c in communes},
    )


def _groups(liste: Liste, lignes: list[Ligne]) -> list[list[Ligne]]:
    """The candidatures of the list: communes sharing an id (liste2021), or one each."""
    if not liste.format.grouped:
        return [[ligne] for ligne in lignes]
    by_id: dict[str, list[Ligne]] = defaultdict(list)
    for ligne in lignes:
        if ligne.id_pvd:
            by_id[ligne.id_pvd].append(ligne)
    groups, done = [], set()
    for ligne in lignes:
        if not ligne.id_pvd or len(by_id[ligne.id_pvd]) == 1:
            groups.append([ligne])
        elif ligne.id_pvd not in done:
            done.add(ligne.id_pvd)
            groups.append(by_id[ligne.id_pvd])
    return groups


def check_database(date_liste: date) -> None:
    """The reference is there and no more recent list was imported; else PvdImportError."""
    if not Commune.objects.exists():
        raise PvdImportError(REFERENCE_VIDE)
    if date_liste > timezone.localdate():
        raise PvdImportError(
            f"La date de la liste ({date_liste:%d/%m/%Y}) est dans le futur : vérifiez "
            "--date-liste."
        )
    latest = IdentifiantPVD.objects.aggregate(latest=Max("date_liste"))["latest"]
    if latest is not None and date_liste < latest:
        raise PvdImportError(
            f"Une liste plus récente (du {latest:%d/%m/%Y}) a déjà été importée. "
            f"Cette liste est du {date_liste:%d/%m/%Y} : une liste plus ancienne ne peut "
            "pas remplacer la situation actuelle."
        )


def build_plan(liste: Liste, date_liste: date, date_source: str) -> Plan:
    """Compare the list with the database and decide every change; write nothing."""
    check_database(date_liste)
    plan = Plan(liste, date_liste)
    communes, lignes = _known_lignes(plan)
    in_file = {ligne.code for ligne in lignes}
    membres = _active_members()
    actif = {m.commune: m for m in membres}
    par_beneficiaire: dict[int, list[Membre]] = defaultdict(list)
    for m in membres:
        par_beneficiaire[m.beneficiaire].append(m)
    for group in _groups(liste, lignes):
        _plan_group(plan, group, communes, actif, par_beneficiaire, in_file)
    _plan_departures(plan, par_beneficiaire, in_file)
    _plan_ids(plan, lignes)
    _summary(plan, date_source)
    return plan


def _known_lignes(plan: Plan) -> tuple[dict[str, CommuneInfo], list[Ligne]]:
    """The lines of communes the territorial reference knows; the others are reported."""
    liste, report = plan.liste, plan.report
    codes = [ligne.code for ligne in liste.lignes]
    communes = {
        row[0]: CommuneInfo(*row[:4], row[4] or "", row[5])
        for row in Commune.objects.filter(code__in=codes).values_list(
            "code", "nom", "departement_id", "epci_id", "epci__nom", "population"
        )
    }
    lignes = []
    for ligne in liste.lignes:
        if ligne.code in communes:
            lignes.append(ligne)
        else:
            plan.inconnus += 1
            id_pvd = f" (id_pvd {ligne.id_pvd})" if ligne.id_pvd else ""
            report.add(INCONNUS, f"ligne {ligne.line} : {ligne.code} {ligne.nom}{id_pvd}")
    for text in liste.modeles:
        report.add(MODELE, text)
    return communes, lignes


def _active_members() -> list[Membre]:
    """The communes of the active beneficiaries, most populous first (as in their names)."""
    membres = [
        Membre(*row)
        for row in MembreBeneficiaire.objects.filter(
            actif=True, beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS
        ).values_list(
            "pk",
            "commune_id",
            "commune__nom",
            "beneficiaire_id",
            "beneficiaire__nom",
            "date_signature",
            "commune__population",
        )
    ]
    membres.sort(key=lambda m: (-(m.population or 0), normalize(m.commune_nom), m.commune))
    return membres


def _plan_group(
    plan: Plan,
    group: list[Ligne],
    communes: dict[str, CommuneInfo],
    actif: dict[str, Membre],
    par_beneficiaire: dict[int, list[Membre]],
    in_file: set[str],
) -> None:
    """Communes that join, in a new beneficiary; a group that differs, left alone."""
    report = plan.report
    group_codes = {ligne.code for ligne in group}
    touched = {actif[c].beneficiaire for c in group_codes if c in actif}
    if not touched:
        infos = [communes[c] for c in group_codes]
        signatures = {ligne.code: ligne.date_signature for ligne in group}
        nouveau = nouveau_beneficiaire(infos, signatures, plan)
        plan.nouveaux.append(nouveau)
        ids = sorted({ligne.id_pvd for ligne in group if ligne.id_pvd})
        id_text = f" (id_pvd {', '.join(ids)})" if ids else ""
        sorted_infos = [communes[c] for c in nouveau.communes]
        report.add(CREES, f"« {nouveau.nom} » : {_liste_of(sorted_infos)}{id_text}")
        return
    if plan.liste.format.grouped:
        # The communes of the beneficiary that stay on the list.
        current = {m.commune for b in touched for m in par_beneficiaire[b] if m.commune in in_file}
        if len(touched) > 1 or current != group_codes:
            plan.a_decider += 1
            report.add(A_DECIDER, _conflict(group, touched, par_beneficiaire, communes))
            return
    plan.inchangees += sum(1 for c in group_codes if c in actif)
    for ligne in group:
        m = actif.get(ligne.code)
        if m and ligne.date_signature and ligne.date_signature != m.date_signature:
            plan.signatures[m.pk] = ligne.date_signature
            report.add(
                SIGNATURES,
                f"{ligne.code} {m.commune_nom} (« {m.beneficiaire_nom} ») : "
                f"{_date_text(m.date_signature)} → {ligne.date_signature:%d/%m/%Y}",
            )


def _plan_departures(
    plan: Plan, par_beneficiaire: dict[int, list[Membre]], in_file: set[str]
) -> None:
    """Communes absent from the list leave; a beneficiary left with none is withdrawn."""
    report = plan.report
    by_name = sorted(par_beneficiaire.items(), key=lambda i: normalize(i[1][0].beneficiaire_nom))
    for beneficiaire, members in by_name:
        partants = [m for m in members if m.commune not in in_file]
        if not partants:
            continue
        plan.sorties += [m.pk for m in partants]
        restants = [m for m in members if m.commune in in_file]
        nom = members[0].beneficiaire_nom
        for m in partants:
            if restants:
                garde = ", ".join(f"{r.commune} {r.commune_nom}" for r in restants)
                suite = f"qui garde {garde}"
            else:
                suite = "qui n'a plus de commune sur la liste et est retiré"
            report.add(
                SORTIES, f"{m.commune} {m.commune_nom} quitte le bénéficiaire « {nom} », {suite}"
            )
        if not restants:
            plan.retraits.append(beneficiaire)
            report.add(RETIRES, f"« {nom} » ({', '.join(m.commune for m in members)})")


def _plan_ids(plan: Plan, lignes: list[Ligne]) -> None:
    """The PVD ids of this list's date: created, changed, kept or deleted."""
    existing = {
        commune: (pk, id_pvd)
        for pk, commune, id_pvd in IdentifiantPVD.objects.filter(
            date_liste=plan.date_liste
        ).values_list("pk", "commune_id", "id_pvd")
    }
    with_id = {ligne.code: ligne.id_pvd for ligne in lignes if ligne.id_pvd}
    for code, id_pvd in with_id.items():
        current = existing.get(code)
        if current is None:
            plan.ids_crees.append((code, id_pvd))
        elif current[1] != id_pvd:
            plan.ids_modifies[current[0]] = id_pvd
        else:
            plan.ids_inchanges += 1
    for code, (pk, id_pvd) in sorted(existing.items()):
        if code not in with_id:
            plan.ids_supprimes.append(pk)
            plan.report.add(IDS_SUPPRIMES, f"{code} : {id_pvd}")


def _date_text(value: date | None) -> str:
    return f"{value:%d/%m/%Y}" if value else "sans date"


def _conflict(
    group: list[Ligne],
    touched: set[int],
    par_beneficiaire: dict[int, list[Membre]],
    communes: dict[str, CommuneInfo],
) -> str:
    ids = sorted({ligne.id_pvd for ligne in group if ligne.id_pvd})
    infos = _sorted_communes([communes[ligne.code] for ligne in group])
    in_db = []
    for b in sorted(touched, key=lambda b: normalize(par_beneficiaire[b][0].beneficiaire_nom)):
        members = par_beneficiaire[b]
        listed = ", ".join(f"{m.commune} {m.commune_nom}" for m in members)
        in_db.append(f"« {members[0].beneficiaire_nom} » ({listed})")
    in_beneficiaires = {m.commune for b in touched for m in par_beneficiaire[b]}
    in_none = [c for c in infos if c.code not in in_beneficiaires]
    if in_none:
        in_db.append(f"hors de tout bénéficiaire actif : {_liste_of(in_none)}")
    id_text = f" (id_pvd {', '.join(ids)})" if ids else " (sans id_pvd)"
    return f"liste ANCT : {_liste_of(infos)}{id_text} ; en base : {' ; '.join(in_db)}"


def _summary(plan: Plan, date_source: str) -> None:
    liste, report = plan.liste, plan.report
    report.header = [
        "Import de la liste ANCT des communes Petites villes de demain",
        f"  Fichier : {liste.path}",
        f"  Format : {liste.format.label} ({liste.format.key})",
        f"  Date de la liste : {plan.d} ({date_source})",
    ]
    if liste.hors_pvd:
        report.header.append(f"  Lignes sans id_pvd (communes hors PVD) : {fmt(liste.hors_pvd)}")
    joined = sum(len(n.communes) for n in plan.nouveaux)
    report.counts = {
        "Communes PVD dans le fichier": len(liste.lignes),
        "Bénéficiaires créés": len(plan.nouveaux),
        "Communes entrées dans le programme": joined,
        "Communes sorties du programme": len(plan.sorties),
        "Bénéficiaires retirés": len(plan.retraits),
        "Communes déjà dans un bénéficiaire actif": plan.inchangees,
        "Identifiants PVD enregistrés": len(plan.ids_crees) + len(plan.ids_modifies),
        "Identifiants PVD déjà enregistrés": plan.ids_inchanges,
        "Codes INSEE inconnus": plan.inconnus,
        "Regroupements à décider": plan.a_decider,
    }
    if plan.ids_supprimes:
        report.counts["Identifiants PVD de cette date supprimés"] = len(plan.ids_supprimes)
    if liste.format.signatures:
        report.counts["Dates de signature mises à jour"] = len(plan.signatures)


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def apply_plan(plan: Plan) -> Report:
    """Write the plan; the caller holds the transaction."""
    d = plan.d
    for membre in MembreBeneficiaire.objects.in_bulk(plan.sorties).values():
        membre.actif = False
        membre.save(update_fields=["actif"])
    for beneficiaire in Beneficiaire.objects.in_bulk(plan.retraits).values():
        beneficiaire.change_statut(
            Beneficiaire.Statut.RETIRE,
            by=None,
            date_decision=plan.date_liste,
            reference=f"Absente de la liste ANCT du {d}",
            motif=(
                "Aucune de ses communes n'est sur la liste ANCT des communes Petites villes "
                f"de demain du {d}."
            ),
        )
    # ANCT's reference data, like the ids: in bulk (up to ~1,650 rows), traced by the ImportRun.
    MembreBeneficiaire.objects.bulk_update(
        [MembreBeneficiaire(pk=pk, date_signature=day) for pk, day in plan.signatures.items()],
        ["date_signature"],
        batch_size=BATCH_SIZE,
    )

    _create_beneficiaires(plan)

    IdentifiantPVD.objects.bulk_create(
        [
            IdentifiantPVD(commune_id=code, id_pvd=id_pvd, date_liste=plan.date_liste)
            for code, id_pvd in plan.ids_crees
        ],
        batch_size=BATCH_SIZE,
    )
    for pk, identifiant in IdentifiantPVD.objects.in_bulk(list(plan.ids_modifies)).items():
        identifiant.id_pvd = plan.ids_modifies[pk]
        identifiant.save(update_fields=["id_pvd"])
    if plan.ids_supprimes:
        IdentifiantPVD.objects.filter(pk__in=plan.ids_supprimes).delete()

    report = plan.report
    record_run(
        IMPORT_KIND,
        str(plan.liste.path),
        report,
        created=plan.created,
        updated=plan.updated,
        unchanged=plan.inchangees,
        skipped=plan.skipped,
    )
    return report


def _create_beneficiaires(plan: Plan) -> None:
    """The new beneficiaries, lauréats of this list, with their two decisions.

    Written in bulk (about 1,500 on the first list: one by one, with the audit trail,
    took over 10 s on PostgreSQL). The rows are those of ``enregistrer_proposition``
    then ``change_statut("laureat")``; the ImportRun report lists them.
    """
    d = plan.d
    beneficiaires = Beneficiaire.objects.bulk_create(
        [
            Beneficiaire(
                nom=nouveau.nom,
                departement_id=nouveau.departement_id,
                epci_id=nouveau.epci_id,
                statut=Beneficiaire.Statut.LAUREAT,
                motif_epci_multiples=nouveau.motif_epci_multiples,
                justification_population=nouveau.justification_population,
            )
            for nouveau in plan.nouveaux
        ],
        batch_size=BATCH_SIZE,
    )
    membres, decisions = [], []
    for beneficiaire, nouveau in zip(beneficiaires, plan.nouveaux, strict=True):
        membres += [
            MembreBeneficiaire(
                beneficiaire=beneficiaire,
                commune_id=code,
                date_signature=nouveau.signatures[code],
            )
            for code in nouveau.communes
        ]
        decisions += [
            DecisionStatut(
                beneficiaire=beneficiaire,
                ancien_statut="",
                nouveau_statut=Beneficiaire.Statut.CANDIDAT,
                decided_by=None,
                date_decision=plan.date_liste,
                reference=f"Liste ANCT du {d}",
            ),
            DecisionStatut(
                beneficiaire=beneficiaire,
                ancien_statut=Beneficiaire.Statut.CANDIDAT,
                nouveau_statut=Beneficiaire.Statut.LAUREAT,
                decided_by=None,
                date_decision=plan.date_liste,
                reference=f"Liste ANCT des communes Petites villes de demain du {d}",
            ),
        ]
    MembreBeneficiaire.objects.bulk_create(membres, batch_size=BATCH_SIZE)
    DecisionStatut.objects.bulk_create(decisions, batch_size=BATCH_SIZE)


# A national list that makes more than this share of the programme leave is probably a
# partial file (one région, one département): the import stops unless told to go on.
SEUIL_SORTIES = 0.10


def check_departures(plan: Plan, force: bool) -> None:
    actifs = MembreBeneficiaire.objects.filter(
        actif=True, beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS
    ).count()
    if force or not actifs or len(plan.sorties) <= SEUIL_SORTIES * actifs:
        return
    raise PvdImportError(
        f"Cette liste ferait sortir du programme {len(plan.sorties)} communes sur {actifs} "
        f"({len(plan.sorties) / actifs:.0%}). Est-ce bien une liste nationale complète ? "
        "Relancez avec --force si ces sorties sont voulues."
    )


def import_pvd(path: str | Path, date_liste: date | None = None, force: bool = False) -> Report:
    """Read and check the file, then apply it all or nothing.

    Raises :class:`ImportFileError` (a fault of the file) or :class:`PvdImportError`
    (missing reference, missing or too old list date), changing nothing.
    """
    if not Commune.objects.exists():
        raise PvdImportError(REFERENCE_VIDE)
    liste = parse_liste(path)
    date_liste, date_source = resolve_date(liste, date_liste)
    with transaction.atomic():
        plan = build_plan(liste, date_liste, date_source)
        check_departures(plan, force)
        return apply_plan(plan)
