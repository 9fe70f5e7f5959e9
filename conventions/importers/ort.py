"""Import the national ORT tracking file (« suivi national des ORT »).

The ministry's table of the communes covered by an opération de revitalisation de
territoire, one row per commune (``ort_conventions_suivi_national.csv``, comma-separated,
quoted cells that may span several lines). Columns are read by NAME; two of them have a
comma in their name (« Si signée, date de signature », « Si non signée, date de
signature envisagée »), which the CSV quoting handles.

Only the rows with ``PVD`` = ``true`` concern the programme; the others (ACV, other
towns) are counted and skipped. A PVD commune is matched on its « Code commune » with its
ACTIVE beneficiary (active membership of a candidat or lauréat); the convention-cadre PVD
valant ORT belongs to the beneficiary, so a grouped beneficiary gets ONE convention for
all its communes.

Three steps, as in the other importers:

1. :func:`parse_ort` reads and checks every PVD row (``ImportFileError`` with file, line
   and column on the first fault, the line being the one where a record STARTS, so that a
   multi-line « Remarques » cell does not shift the numbers), without the database.
2. :func:`build_plan` loads what the database holds in a handful of queries (communes,
   active memberships, the conventions-cadres of those beneficiaries) and decides
   everything; it writes nothing.
3. :func:`apply_plan` writes the plan in the transaction opened by :func:`import_ort` and
   records an :class:`~pvd.models.ImportRun` (``kind="ort"``) with the full report.

Rules, per beneficiary:

- Some commune « Signée » with an ISO date: the beneficiary has one convention-cadre,
  ``statut=signee``, ``source=import_ort``, signed (and in force) on the EARLIEST date of
  its communes (different dates are reported), with the duration (« Durée (en années) »,
  ``0`` meaning unknown) and the end date (« Date de fin estimée », ``DD-MM-YYYY``, else
  computed from the duration) of the row that gives that date. Its « date de rédaction »
  is set to the signature date too: the real one is unknown, and the day of the import
  would be wrong for a convention signed years ago.

  - a signed convention-cadre entered on the portal (``source=portail``) wins: it is not
    touched, and reported;
  - a convention-cadre of a previous import is updated (idempotent), unless the portal
    moved it on since (avenant, échue, résiliée): then it is left and reported;
  - a draft or a convention « en signature » on the portal is not touched and no signed
    one is created beside it (a beneficiary has ONE convention-cadre): reported, for a
    person to record the signature on the portal.

- No commune signed: nothing is created (a draft per unsigned beneficiary would fill the
  portal with empty conventions). The planned date, free text such as « 4e trimestre
  2023 », goes to ``date_signature_prevue`` of the beneficiary's draft or « en signature »
  convention-cadre when there is one (the field exists for this text of the national
  tracking; « Pas de date de signature envisagée » empties it), else to the report.
- A row « Signée » without a date gives a signed convention whose date stays empty, to be
  completed on the portal (the file says it is signed; inventing a date would be worse
  than leaving it blank), unless another commune of the beneficiary gives the date.
- A commune of the file that is unknown, or in no active beneficiary (it left the
  programme, or was never on an imported ANCT list), is reported, never fatal.

Conventions are created and updated in bulk (about 1,300 on the national file), traced by
the ImportRun report rather than the audit log; the planned date of a portal draft is
saved one by one (``save()``, audited), as a person's convention.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone

from communes.importers.cog import COMMUNE_CODE
from communes.importers.csvfile import ImportFileError, quote, read_rows
from communes.importers.report import Report, fmt, record_run
from communes.models import Beneficiaire, Commune, MembreBeneficiaire, normalize
from conventions.models import Convention

IMPORT_KIND = "ort"
BATCH_SIZE = 1000
DUREE_MAX = 99  # years; more is a typing error, and would overflow the end date

COMMUNE = "Commune"
CODE = "Code commune"
SIGNEE = "Signée ?"
DATE_SIGNATURE = "Si signée, date de signature"
DATE_PREVUE = "Si non signée, date de signature envisagée"
DUREE = "Durée (en années)"
DATE_FIN = "Date de fin estimée"
PVD = "PVD"
COLUMNS = (COMMUNE, CODE, SIGNEE, DATE_SIGNATURE, DATE_PREVUE, DUREE, DATE_FIN, PVD)

# « Signée ? », normalised (lowercase, no accents) -> how it is written.
SIGNEE_OUI = "Signée"
ETATS = {"signee": SIGNEE_OUI, "non signee": "Non signée", "en cours": "En cours", "": ""}
BOOLEENS = {"true": True, "false": False}
PAS_DE_DATE = normalize("Pas de date de signature envisagée")

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
FRENCH_DATE = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$", re.ASCII)

TITRE = "Convention-cadre Petites villes de demain valant ORT – {nom}"
TITRE_MAX_LENGTH = Convention._meta.get_field("titre").max_length
PREVUE_MAX_LENGTH = Convention._meta.get_field("date_signature_prevue").max_length

REFERENCE_VIDE = "Importez d'abord le référentiel territorial (import_territoires)."
BENEFICIAIRES_VIDE = (
    "Aucun bénéficiaire PVD actif dans le portail : importez d'abord les listes ANCT des "
    "communes Petites villes de demain (import_pvd), puis le suivi national des ORT."
)


class OrtImportError(Exception):
    """The file cannot be imported for a reason that is not a fault of the file."""


# --------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ligne:
    """A PVD commune of the file."""

    line: int
    code: str
    nom: str  # « Commune » as written (« 19 - Ussel »): the report only
    etat: str  # « Signée ? » as written: Signée, Non signée, En cours or ''
    date_signature: date | None  # only on a row « Signée »
    date_prevue: str  # free text, '' when none
    duree: int | None  # years, None when unknown (0 or empty)
    date_fin: date | None
    date_ignoree: str  # a signature date on a row that is not « Signée »

    @property
    def signee(self) -> bool:
        return self.etat == SIGNEE_OUI

    @property
    def label(self) -> str:
        return f"{self.code} {_nom_commune(self.nom)}"

    @property
    def etat_text(self) -> str:
        if self.signee:
            return f"signée le {_d(self.date_signature)}" if self.date_signature else "signée"
        return self.etat.lower() if self.etat else "statut non renseigné"


@dataclass
class FichierOrt:
    path: Path
    lignes: list[Ligne] = field(default_factory=list)
    total: int = 0  # records of the file
    hors_pvd: int = 0  # ACV and other towns, skipped

    @property
    def signees(self) -> int:
        return sum(1 for ligne in self.lignes if ligne.signee)


def _nom_commune(nom: str) -> str:
    """« 19 - Ussel » -> « Ussel »: the file prefixes the département."""
    head, sep, tail = nom.partition(" - ")
    return tail.strip() if sep and head.strip().isalnum() and len(head.strip()) <= 3 else nom


def _iso_date(row, column: str) -> date:
    value = row[column]
    if ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise row.error(column, f"date invalide {quote(value)} : format attendu AAAA-MM-JJ")


def _french_date(row, column: str) -> date | None:
    value = row[column]
    if not value:
        return None
    match = FRENCH_DATE.match(value)
    if match:
        day, month, year = (int(part) for part in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            pass
    raise row.error(column, f"date invalide {quote(value)} : format attendu JJ-MM-AAAA")


def _duree(row) -> int | None:
    value = row.integer(DUREE, "durée", required=False)
    if value is not None and value > DUREE_MAX:
        raise row.error(DUREE, f"durée invalide {quote(value)} : {DUREE_MAX} ans au plus")
    return value or None  # 0 means unknown


def _choice(row, column: str, choices: dict, expected: str):
    value = row[column]
    try:
        return choices[normalize(value)]
    except KeyError:
        raise row.error(column, f"valeur invalide {quote(value)} : {expected} attendu") from None


def parse_ort(path: str | Path) -> FichierOrt:
    """Read and check the whole file; raise :class:`ImportFileError` on the first fault."""
    fichier = FichierOrt(Path(path))
    seen: dict[str, int] = {}
    for row in read_rows(fichier.path, COLUMNS):
        fichier.total += 1
        if not _choice(row, PVD, BOOLEENS, "« true » ou « false »"):
            fichier.hors_pvd += 1
            continue
        code = row.matching(CODE, COMMUNE_CODE, "code INSEE")
        if code in seen:
            raise row.error(CODE, f"code INSEE {quote(code)} en double (déjà ligne {seen[code]})")
        seen[code] = row.line
        etat = _choice(
            row, SIGNEE, ETATS, "« Signée », « Non signée », « En cours » ou une case vide"
        )
        duree = _duree(row)
        date_fin = _french_date(row, DATE_FIN)
        date_signature, date_ignoree = None, ""
        if etat == SIGNEE_OUI:
            if row[DATE_SIGNATURE]:
                date_signature = _iso_date(row, DATE_SIGNATURE)
            if date_signature and date_fin and date_fin < date_signature:
                raise row.error(
                    DATE_FIN,
                    f"date de fin {quote(row[DATE_FIN])} antérieure à la date de signature "
                    f"{quote(row[DATE_SIGNATURE])}",
                )
        else:
            date_ignoree = row[DATE_SIGNATURE]
        prevue = " ".join(row[DATE_PREVUE].split())
        if normalize(prevue) == PAS_DE_DATE:
            prevue = ""
        fichier.lignes.append(
            Ligne(
                line=row.line,
                code=code,
                nom=row[COMMUNE],
                etat=etat,
                date_signature=date_signature,
                date_prevue=prevue,
                duree=duree,
                date_fin=date_fin,
                date_ignoree=date_ignoree,
            )
        )
    if not fichier.lignes:
        raise ImportFileError(
            "aucune commune PVD dans ce fichier (aucune ligne dont la colonne « PVD » vaut "
            "« true »)",
            path=fichier.path,
            line=2,
            column=PVD,
        )
    return fichier


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------

# Sections of the report, in this order: what a person has to look at first.
PROJETS = (
    "Signée selon le suivi national, mais un projet de convention-cadre est en cours sur "
    "le portail : à régulariser sur le portail (aucune convention créée)"
)
SANS_DATE = (
    "Communes marquées « Signée » sans date de signature (convention signée créée, "
    "date à compléter)"
)
SANS_BENEFICIAIRE = "Communes PVD sans bénéficiaire actif dans le portail, ignorées"
INCONNUS = "Codes INSEE inconnus du référentiel territorial, ignorés"
PORTAIL = "Conventions-cadres signées saisies sur le portail, laissées telles quelles"
MODIFIEES = "Conventions-cadres importées puis modifiées sur le portail, laissées telles quelles"
DOUBLONS = (
    "Bénéficiaires ayant plusieurs conventions-cadres importées (la plus ancienne est tenue à jour)"
)
ECARTS = (
    "Bénéficiaires dont les communes portent des dates de signature différentes "
    "(la plus ancienne est retenue)"
)
STATUTS_MIXTES = "Bénéficiaires dont une partie des communes seulement est signée"
PLUS_SIGNEES = "Conventions-cadres importées que le suivi national ne dit plus signées, laissées"
DATES_IGNOREES = "Date de signature ignorée : la commune n'est pas marquée « Signée »"
PREVUES = "Signature envisagée enregistrée sur le projet de convention-cadre"
NON_SIGNEES = "Bénéficiaires sans convention-cadre : signature envisagée selon le suivi national"
ABSENTES = "Communes des bénéficiaires actifs absentes du suivi national"
MISES_A_JOUR = "Conventions-cadres mises à jour"
CREEES = "Conventions-cadres créées"
_SECTION_ORDER = [
    PROJETS,
    SANS_DATE,
    SANS_BENEFICIAIRE,
    INCONNUS,
    PORTAIL,
    MODIFIEES,
    DOUBLONS,
    ECARTS,
    STATUTS_MIXTES,
    PLUS_SIGNEES,
    DATES_IGNOREES,
    PREVUES,
    NON_SIGNEES,
    ABSENTES,
    MISES_A_JOUR,
    CREEES,
]


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------

IMPORTED_FIELDS = (
    "titre",
    "date_signature",
    "date_entree_vigueur",
    "duree_annees",
    "date_fin",
    "date_redaction",
)


@dataclass
class Plan:
    fichier: FichierOrt
    creations: list[Convention] = field(default_factory=list)
    mises_a_jour: list[Convention] = field(default_factory=list)
    projets_dates: list[Convention] = field(default_factory=list)  # drafts: planned date
    inchangees: int = 0
    inconnus: int = 0
    sans_beneficiaire: int = 0
    beneficiaires: int = 0  # active beneficiaries with a commune in the file
    absentes: int = 0  # communes of active beneficiaries that the file does not list
    portail: int = 0  # beneficiaries whose signed cadre was entered on the portal
    laissees: int = 0  # imported cadres moved on by the portal, left
    projets_en_cours: int = 0  # signed in the file, a draft on the portal: left
    non_signes: int = 0  # beneficiaries with no convention-cadre, planned date reported
    # The communes marked « Signée »: covered by a signed convention-cadre, or why not.
    couvertes: int = 0
    signees_inconnues: int = 0
    signees_sans_beneficiaire: int = 0
    signees_sans_date: int = 0
    signees_projet: int = 0
    report: Report = field(default_factory=lambda: Report(order=_SECTION_ORDER))

    @property
    def created(self) -> int:
        return len(self.creations)

    @property
    def updated(self) -> int:
        return len(self.mises_a_jour) + len(self.projets_dates)

    @property
    def skipped(self) -> int:
        return self.fichier.hors_pvd + self.inconnus + self.sans_beneficiaire


def titre_for(nom: str) -> str:
    titre = TITRE.format(nom=nom)
    if len(titre) > TITRE_MAX_LENGTH:
        titre = titre[: TITRE_MAX_LENGTH - 1] + "…"
    return titre


def _d(value: date | None) -> str:
    return f"{value:%d/%m/%Y}" if value else "—"


def _wanted(kept: Ligne, nom: str) -> dict:
    """The imported fields of the convention-cadre signed as this row says."""
    signee = kept.date_signature
    date_fin = kept.date_fin
    if date_fin is None and kept.duree and signee:
        date_fin = signee + relativedelta(years=kept.duree)
    return {
        "titre": titre_for(nom),
        "date_signature": signee,
        "date_entree_vigueur": signee,
        "duree_annees": kept.duree,
        "date_fin": date_fin,
        # Unknown signature date: the record is dated the day it enters the portal.
        "date_redaction": signee or timezone.localdate(),
    }


def _value_text(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, date):
        return _d(value)
    return f"« {value} »" if isinstance(value, str) else str(value)


def _changes(convention: Convention, wanted: dict) -> list[str]:
    changes = []
    for name in IMPORTED_FIELDS:
        old, new = getattr(convention, name), wanted[name]
        if name == "date_redaction" and wanted["date_signature"] is None:
            continue  # dated the day it entered the portal: not a change of the file
        if old != new:
            label = Convention._meta.get_field(name).verbose_name
            changes.append(f"{label} {_value_text(old)} → {_value_text(new)}")
    return changes


def _communes_text(lignes: list[Ligne]) -> str:
    return ", ".join(f"{ligne.label} ({ligne.etat_text})" for ligne in lignes)


def _prevue_text(lignes: list[Ligne]) -> str:
    """The planned date of a beneficiary: one text, or each commune's when they differ."""
    texts = {ligne.date_prevue for ligne in lignes if ligne.date_prevue}
    if len(texts) <= 1:
        text = texts.pop() if texts else ""
    else:
        text = " ; ".join(
            f"{_nom_commune(ligne.nom)} : {ligne.date_prevue}"
            for ligne in lignes
            if ligne.date_prevue
        )
    if len(text) > PREVUE_MAX_LENGTH:
        text = text[: PREVUE_MAX_LENGTH - 1] + "…"
    return text


def check_database() -> None:
    if not Commune.objects.exists():
        raise OrtImportError(REFERENCE_VIDE)
    if not Beneficiaire.objects.actifs().exists():
        raise OrtImportError(BENEFICIAIRES_VIDE)


def build_plan(fichier: FichierOrt) -> Plan:
    """Compare the file with the database and decide every change; write nothing."""
    plan = Plan(fichier)
    report = plan.report
    codes = [ligne.code for ligne in fichier.lignes]

    known = set(Commune.objects.filter(code__in=codes).values_list("code", flat=True))
    # Every active membership (about 1,650): the ones absent from the file are reported.
    actifs: dict[str, tuple[int, str]] = {}
    commune_noms: dict[str, str] = {}
    for commune, commune_nom, beneficiaire, nom in MembreBeneficiaire.objects.filter(
        actif=True, beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS
    ).values_list("commune_id", "commune__nom", "beneficiaire_id", "beneficiaire__nom"):
        actifs[commune] = (beneficiaire, nom)
        commune_noms[commune] = commune_nom
    in_file = set(codes)
    for commune in sorted(set(actifs) - in_file):
        plan.absentes += 1
        report.add(ABSENTES, f"{commune} {commune_noms[commune]} (« {actifs[commune][1]} »)")
    hors_portail = [code for code in codes if code in known and code not in actifs]
    anciens: dict[str, list[str]] = defaultdict(list)
    statuts = dict(Beneficiaire.Statut.choices)
    for commune, nom, statut in (
        MembreBeneficiaire.objects.filter(commune_id__in=hors_portail)
        .order_by("-created_at")
        .values_list("commune_id", "beneficiaire__nom", "beneficiaire__statut")
    ):
        if statut in Beneficiaire.STATUTS_ACTIFS:
            anciens[commune].append(f"commune sortie du bénéficiaire « {nom} »")
        else:
            anciens[commune].append(f"bénéficiaire « {nom} » : {statuts[statut].lower()}")

    par_beneficiaire: dict[int, list[Ligne]] = defaultdict(list)
    noms: dict[int, str] = {}
    for ligne in fichier.lignes:
        if ligne.date_ignoree:
            report.add(
                DATES_IGNOREES,
                f"ligne {ligne.line} : {ligne.label} ({ligne.etat_text}), date "
                f"{quote(ligne.date_ignoree)}",
            )
        if ligne.code not in known:
            plan.inconnus += 1
            plan.signees_inconnues += ligne.signee
            report.add(INCONNUS, f"ligne {ligne.line} : {ligne.label} ({ligne.etat_text})")
            continue
        if ligne.code not in actifs:
            plan.sans_beneficiaire += 1
            plan.signees_sans_beneficiaire += ligne.signee
            why = " ; ".join(anciens[ligne.code]) or "absente des listes ANCT importées"
            why = f"sortie du programme ({why})" if anciens[ligne.code] else why
            report.add(
                SANS_BENEFICIAIRE,
                f"ligne {ligne.line} : {ligne.label} ({ligne.etat_text}) : {why}",
            )
            continue
        beneficiaire, nom = actifs[ligne.code]
        par_beneficiaire[beneficiaire].append(ligne)
        noms[beneficiaire] = nom
    plan.beneficiaires = len(par_beneficiaire)

    cadres: dict[int, list[Convention]] = defaultdict(list)
    for convention in Convention.objects.filter(
        type=Convention.Type.CADRE, beneficiaire_id__in=list(par_beneficiaire)
    ).order_by("pk"):
        cadres[convention.beneficiaire_id].append(convention)

    for beneficiaire in sorted(par_beneficiaire, key=lambda b: (normalize(noms[b]), b)):
        _plan_beneficiaire(
            plan, beneficiaire, noms[beneficiaire], par_beneficiaire[beneficiaire], cadres
        )
    _summary(plan)
    return plan


@dataclass
class Situation:
    """One beneficiary: its lines in the file and its conventions-cadres in the portal."""

    beneficiaire: int
    nom: str
    lignes: list[Ligne]
    signees: list[Ligne]  # signed, with a date
    sans_date: list[Ligne]  # signed, without a date
    autres: list[Ligne]  # not signed
    du_portail: list[Convention]  # signed, entered on the portal
    importees: list[Convention]  # signed, imported from this file
    projets: list[Convention]  # drafts

    @property
    def n_signees(self) -> int:
        return len(self.signees) + len(self.sans_date)


def _plan_beneficiaire(
    plan: Plan,
    beneficiaire: int,
    nom: str,
    lignes: list[Ligne],
    cadres: dict[int, list[Convention]],
) -> None:
    signees = [ligne for ligne in lignes if ligne.signee and ligne.date_signature]
    sans_date = [ligne for ligne in lignes if ligne.signee and not ligne.date_signature]
    if sans_date and not signees:
        # Signed, says the national file, without the date: a signed convention whose
        # date stays to be completed, rather than no convention at all.
        for ligne in sans_date:
            plan.report.add(SANS_DATE, f"ligne {ligne.line} : {ligne.label} (« {nom} »)")
        plan.signees_sans_date += len(sans_date)
        signees, sans_date = sans_date, []
    existing = cadres.get(beneficiaire, [])
    signed = [c for c in existing if c.statut in Convention.STATUTS_SIGNES]
    situation = Situation(
        beneficiaire=beneficiaire,
        nom=nom,
        lignes=lignes,
        signees=signees,
        sans_date=sans_date,
        autres=[ligne for ligne in lignes if not ligne.signee],
        du_portail=[c for c in signed if c.source == Convention.Source.PORTAIL],
        importees=[c for c in signed if c.source == Convention.Source.IMPORT_ORT],
        projets=[c for c in existing if c.statut in Convention.STATUTS_MODIFIABLES],
    )
    if not signees:
        _plan_unsigned(plan, situation)
    else:
        _plan_signed(plan, situation)


def _plan_unsigned(plan: Plan, s: Situation) -> None:
    """No commune signed with a date: keep what the portal has, or note the planned date."""
    report, nom = plan.report, s.nom
    if s.du_portail or s.importees:
        plan.couvertes += s.n_signees
        if s.importees and not s.sans_date:
            c = s.importees[0]
            report.add(
                PLUS_SIGNEES,
                f"« {nom} » : convention du {_d(c.date_signature)} ; suivi national : "
                f"{_communes_text(s.lignes)}",
            )
        return
    plan.signees_sans_date += len(s.sans_date)
    for ligne in s.sans_date:
        report.add(SANS_DATE, f"ligne {ligne.line} : {ligne.label} (« {nom} »)")
    if not s.autres:
        return
    prevue = _prevue_text(s.autres)
    if s.projets:
        for projet in s.projets:
            if projet.date_signature_prevue != prevue:
                report.add(
                    PREVUES,
                    f"« {nom} » : {_value_text(projet.date_signature_prevue or None)} → "
                    f"{_value_text(prevue or None)}",
                )
                projet.date_signature_prevue = prevue
                plan.projets_dates.append(projet)
    elif not s.sans_date:
        plan.non_signes += 1
        etats = sorted({ligne.etat_text for ligne in s.autres})
        report.add(
            NON_SIGNEES,
            f"« {nom} » : {prevue or 'non renseignée'} ({', '.join(etats)})",
        )


def _plan_signed(plan: Plan, s: Situation) -> None:
    """At least one commune signed, with its date: the earliest signature is kept."""
    report, nom = plan.report, s.nom
    kept = min(
        s.signees,
        key=lambda ligne: (
            ligne.date_signature or date.max,
            ligne.date_fin is None,
            ligne.duree is None,
            ligne.line,
        ),
    )
    if len({ligne.date_signature for ligne in s.signees if ligne.date_signature}) > 1:
        report.add(
            ECARTS,
            f"« {nom} » : {_communes_text(s.signees)} → {_d(kept.date_signature)} retenue",
        )
    if s.autres or s.sans_date:
        report.add(STATUTS_MIXTES, f"« {nom} » : {_communes_text(s.lignes)}")
    wanted = _wanted(kept, nom)
    if s.du_portail:
        _keep_portal_convention(plan, s, kept)
    elif s.importees:
        _update_imported_convention(plan, s, kept, wanted)
    elif s.projets:
        plan.projets_en_cours += 1
        plan.signees_projet += s.n_signees
        c = s.projets[0]
        report.add(
            PROJETS,
            f"« {nom} » : « {c.titre} » ({c.get_statut_display().lower()}) ; suivi "
            f"national : signée le {_d(kept.date_signature)}",
        )
    else:
        _create_convention(plan, s, kept, wanted)


def _keep_portal_convention(plan: Plan, s: Situation, kept: Ligne) -> None:
    """A signed convention entered on the portal is the reference: left as it is."""
    plan.portail += 1
    plan.couvertes += s.n_signees
    c = s.du_portail[0]
    plan.report.add(
        PORTAIL,
        f"« {s.nom} » : « {c.titre} » ({c.get_statut_display().lower()}, signée le "
        f"{_d(c.date_signature)}) ; suivi national : signée le {_d(kept.date_signature)}",
    )


def _update_imported_convention(plan: Plan, s: Situation, kept: Ligne, wanted: dict) -> None:
    """An imported convention follows the file, unless the portal changed its status."""
    report, nom = plan.report, s.nom
    plan.couvertes += s.n_signees
    if len(s.importees) > 1:
        report.add(DOUBLONS, f"« {nom} » : {', '.join(f'n° {c.pk}' for c in s.importees)}")
    target = next((c for c in s.importees if c.statut == Convention.Statut.SIGNEE), None)
    if target is None:
        plan.laissees += 1
        c = s.importees[0]
        report.add(
            MODIFIEES,
            f"« {nom} » : {c.get_statut_display().lower()} ; suivi national : signée le "
            f"{_d(kept.date_signature)}",
        )
        return
    changes = _changes(target, wanted)
    if not changes:
        plan.inchangees += 1
        return
    for name, value in wanted.items():
        setattr(target, name, value)
    plan.mises_a_jour.append(target)
    report.add(MISES_A_JOUR, f"« {nom} » : {', '.join(changes)}")


def _create_convention(plan: Plan, s: Situation, kept: Ligne, wanted: dict) -> None:
    plan.couvertes += s.n_signees
    plan.creations.append(
        Convention(
            beneficiaire_id=s.beneficiaire,
            type=Convention.Type.CADRE,
            statut=Convention.Statut.SIGNEE,
            source=Convention.Source.IMPORT_ORT,
            **wanted,
        )
    )
    duree = f", {kept.duree} ans" if kept.duree else ""
    fin = f", fin le {_d(wanted['date_fin'])}" if wanted["date_fin"] else ""
    plan.report.add(CREEES, f"« {s.nom} » : signée le {_d(kept.date_signature)}{duree}{fin}")


def _summary(plan: Plan) -> None:
    fichier, report = plan.fichier, plan.report
    report.header = [
        "Import du suivi national des ORT (conventions-cadres Petites villes de demain)",
        f"  Fichier : {fichier.path}",
    ]
    report.counts = {
        "Lignes du fichier": fichier.total,
        "Lignes hors PVD (ACV, autres), ignorées": fichier.hors_pvd,
        "Communes PVD dans le fichier": len(fichier.lignes),
        "Codes INSEE inconnus": plan.inconnus,
        "Communes PVD sans bénéficiaire actif": plan.sans_beneficiaire,
        "Bénéficiaires actifs concernés": plan.beneficiaires,
        "Communes des bénéficiaires actifs absentes du fichier": plan.absentes,
        "Conventions-cadres créées": len(plan.creations),
        "Conventions-cadres mises à jour": len(plan.mises_a_jour),
        "Conventions-cadres inchangées": plan.inchangees,
        "Conventions-cadres du portail, laissées": plan.portail,
        "Conventions-cadres importées modifiées depuis, laissées": plan.laissees,
        "Projets en cours alors que signée, laissés": plan.projets_en_cours,
        "Signatures envisagées enregistrées": len(plan.projets_dates),
        "Bénéficiaires non signés sans projet": plan.non_signes,
    }
    signees = fichier.signees
    non_couvertes = signees - plan.couvertes
    gaps = [
        (plan.signees_inconnues, "code INSEE inconnu"),
        (plan.signees_sans_beneficiaire, "sans bénéficiaire actif dans le portail"),
        (plan.signees_projet, "projet de convention en cours sur le portail"),
    ]
    detail = ", ".join(f"{fmt(n)} {why}" for n, why in gaps if n)
    report.footer = [
        f"Communes PVD marquées « Signée » : {fmt(signees)}, dont {fmt(plan.couvertes)} "
        "couvertes par une convention-cadre signée de leur bénéficiaire actif et "
        f"{fmt(non_couvertes)} non couvertes{f' ({detail})' if detail else ''}."
    ]
    if plan.signees_sans_date:
        report.footer.append(
            f"Dont {fmt(plan.signees_sans_date)} sans date de signature dans le fichier : "
            "leur convention est signée, sa date reste à compléter sur le portail."
        )


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def apply_plan(plan: Plan) -> Report:
    """Write the plan; the caller holds the transaction."""
    Convention.objects.bulk_create(plan.creations, batch_size=BATCH_SIZE)
    now = timezone.now()
    for convention in plan.mises_a_jour:
        convention.updated_at = now
    Convention.objects.bulk_update(
        plan.mises_a_jour, [*IMPORTED_FIELDS, "updated_at"], batch_size=BATCH_SIZE
    )
    for projet in plan.projets_dates:
        projet.save(update_fields=["date_signature_prevue", "updated_at"])
    record_run(
        IMPORT_KIND,
        str(plan.fichier.path),
        plan.report,
        created=plan.created,
        updated=plan.updated,
        unchanged=plan.inchangees,
        skipped=plan.skipped,
    )
    return plan.report


def import_ort(path: str | Path) -> Report:
    """Read and check the file, then apply it all or nothing.

    Raises :class:`ImportFileError` (a fault of the file) or :class:`OrtImportError`
    (territories or beneficiaries not imported yet), changing nothing.
    """
    check_database()
    fichier = parse_ort(path)
    with transaction.atomic():
        plan = build_plan(fichier)
        return apply_plan(plan)
