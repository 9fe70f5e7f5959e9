"""Missing adhésion dates from a file (CSV or XLSX): read → plan → apply, all or nothing.

Each row names a beneficiary, by its portal number (« identifiant ») or the INSEE code of
one of its communes, and gives the date its convention d'adhésion was signed. The file is
read as untrusted text (size and type checked, formulas refused); then every row is checked
(each rule a small function below); one error and nothing is recorded, the report says
where and why. Otherwise the dates are recorded in one transaction (each checked again on
the stored beneficiary by ``conventions.echeances.renseigner_date_adhesion``) and the run is kept in
an ``ImportRun`` with the same report.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from openpyxl import load_workbook

from communes.importers.report import Report, record_run
from communes.models import Beneficiaire, MembreBeneficiaire
from pvd import policy

from ..echeances import date_adhesion_errors, renseigner_date_adhesion

MAX_SIZE = 2 * 1024 * 1024
MAX_UNCOMPRESSED_SIZE = 20 * 1024 * 1024
MAX_ROWS = 5000
KIND = "Dates d'adhésion"

COLUMNS = {
    "insee": ("code insee", "insee", "code commune", "code_insee"),
    "identifiant": ("identifiant", "id", "numero", "identifiant beneficiaire", "beneficiaire id"),
    "date": ("date d'adhesion", "date adhesion", "date_adhesion", "date de signature", "date"),
}
HEADER = ["Identifiant", "Code INSEE", "Bénéficiaire", "Date d'adhésion"]
DATE_FR = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
DATE_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


class FichierRefuse(ValidationError):
    pass


def _key(text: object) -> str:
    text = unicodedata.normalize("NFKD", str(text or "")).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", text.replace("’", "'").replace("_", " ")).strip().lower()


# Reading ------------------------------------------------------------------------------------


def read_rows(upload) -> list[tuple[int, list]]:
    """(line number, cells) of an uploaded CSV or XLSX, header first; refuses the rest."""
    if upload.size > MAX_SIZE:
        raise FichierRefuse(
            f"Le fichier pèse {filesizeformat(upload.size)} : la limite est de "
            f"{filesizeformat(MAX_SIZE)}."
        )
    upload.seek(0)
    content = upload.read()
    if content.startswith(b"PK\x03\x04"):
        return _xlsx_rows(content)
    if content.startswith(b"\xd0\xcf\x11\xe0"):
        raise FichierRefuse(
            "Ce fichier est au format Excel 97-2003 (.xls) : enregistrez-le en .xlsx ou en CSV."
        )
    return _csv_rows(content)


def _csv_rows(content: bytes) -> list[tuple[int, list]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FichierRefuse(
            "Ce fichier n'est ni un classeur .xlsx ni un CSV en UTF-8 : enregistrez-le au "
            "format « CSV UTF-8 » ou .xlsx."
        ) from None
    if "\x00" in text:
        raise FichierRefuse("Ce fichier n'est ni un classeur .xlsx ni un fichier CSV.")
    first = text.split("\n", 1)[0]
    delimiter = max(";,\t", key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    return [(number, row) for number, row in enumerate(reader, 1)]


def _xlsx_rows(content: bytes) -> list[tuple[int, list]]:
    refus = FichierRefuse("Ce fichier n'est pas un classeur Excel (.xlsx) valide.")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
            if "xl/workbook.xml" not in archive.namelist():
                raise refus
    except (zipfile.BadZipFile, OSError, ValueError):
        raise refus from None
    if inflated > MAX_UNCOMPRESSED_SIZE:
        raise FichierRefuse("Ce classeur est trop volumineux une fois décompressé.")
    try:
        # Not data_only: a formula is seen as one, and refused, never read as its cache.
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
        sheet = workbook.worksheets[0]
        rows = [
            (number, list(row))
            for number, row in enumerate(sheet.iter_rows(values_only=True), 1)
            if number <= MAX_ROWS + 1
        ]
        workbook.close()
    except Exception:  # openpyxl raises many kinds of errors on a damaged file
        raise refus from None
    return rows


# Planning: each rule a small function -----------------------------------------------------------


@dataclass
class Ligne:
    numero: int
    beneficiaire: Beneficiaire
    date: date


@dataclass
class Plan:
    lignes: list[Ligne] = field(default_factory=list)
    erreurs: list[str] = field(default_factory=list)
    inchangees: int = 0
    vides: int = 0


def _columns(header: list) -> dict[str, int]:
    keys = [_key(cell) for cell in header]
    found = {}
    for name, labels in COLUMNS.items():
        for index, key in enumerate(keys):
            if key in labels:
                found[name] = index
                break
    return found


def _cell(row: list, index: int | None):
    if index is None or index >= len(row):
        return None
    value = row[index]
    return value.strip() if isinstance(value, str) else value


def lire_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if text.startswith("="):
        raise ValueError("une formule n'est pas une date : saisissez la date elle-même")
    if match := DATE_FR.fullmatch(text):
        day, month, year = (int(p) for p in match.groups())
    elif match := DATE_ISO.fullmatch(text):
        year, month, day = (int(p) for p in match.groups())
    else:
        raise ValueError(f"« {text[:40]} » n'est pas une date (JJ/MM/AAAA)")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"« {text[:40]} » n'est pas une date qui existe") from None


def trouver_beneficiaire(identifiant, insee, par_id: dict, par_insee: dict) -> Beneficiaire:
    if identifiant not in (None, ""):
        try:
            beneficiaire = par_id.get(int(str(identifiant).strip()))
        except ValueError:
            beneficiaire = None
        if beneficiaire is None:
            raise ValueError(f"identifiant « {str(identifiant)[:20]} » inconnu")
        if insee and par_insee.get(str(insee)) != beneficiaire:
            raise ValueError(
                f"la commune {str(insee)[:10]} ne fait pas partie de « {beneficiaire.nom} »"
            )
        return beneficiaire
    beneficiaire = par_insee.get(str(insee))
    if beneficiaire is None:
        raise ValueError(f"le code INSEE « {str(insee)[:10]} » n'est celui d'aucun lauréat")
    return beneficiaire


def verifier_droit(user, beneficiaire: Beneficiaire) -> None:
    if not policy.may_date_adhesion(user, beneficiaire):
        raise ValueError(
            f"« {beneficiaire.nom} » n'est pas dans votre département : sa date revient à sa "
            "préfecture"
        )


def plan(rows: list[tuple[int, list]], user) -> Plan:
    result = Plan()
    if not rows:
        result.erreurs.append("Le fichier est vide.")
        return result
    if len(rows) > MAX_ROWS + 1:
        result.erreurs.append(f"Le fichier dépasse {MAX_ROWS} lignes : découpez-le.")
        return result
    columns = _columns(rows[0][1])
    if "date" not in columns or not ({"insee", "identifiant"} & set(columns)):
        result.erreurs.append(
            "Colonnes attendues : « Identifiant » ou « Code INSEE », et « Date d'adhésion » "
            "(téléchargez le modèle sur cette page)."
        )
        return result
    visibles = Beneficiaire.objects.for_user(user).select_related("departement")
    par_id = {b.pk: b for b in visibles}
    par_insee = {
        m.commune_id: par_id[m.beneficiaire_id]
        for m in MembreBeneficiaire.objects.filter(
            actif=True, beneficiaire__statut=Beneficiaire.Statut.LAUREAT
        ).only("commune_id", "beneficiaire_id")
        if m.beneficiaire_id in par_id
    }
    vues: dict[int, tuple[date, int]] = {}
    for numero, row in rows[1:]:
        identifiant = _cell(row, columns.get("identifiant"))
        insee = _cell(row, columns.get("insee"))
        valeur = _cell(row, columns["date"])
        if all(v in (None, "") for v in (identifiant, insee, valeur)):
            result.vides += 1
            continue
        try:
            if valeur in (None, ""):
                raise ValueError("la date d'adhésion manque")
            if identifiant in (None, "") and insee in (None, ""):
                raise ValueError("indiquez l'identifiant du bénéficiaire ou un code INSEE")
            beneficiaire = trouver_beneficiaire(identifiant, insee, par_id, par_insee)
            verifier_droit(user, beneficiaire)
            day = lire_date(valeur)
            if beneficiaire.pk in vues and vues[beneficiaire.pk][0] == day:
                result.inchangees += 1
                continue
            if beneficiaire.pk in vues:
                raise ValueError(
                    f"« {beneficiaire.nom} » figure déjà ligne {vues[beneficiaire.pk][1]} avec "
                    "une autre date"
                )
            vues[beneficiaire.pk] = (day, numero)
            if beneficiaire.date_adhesion_saisie == day:
                result.inchangees += 1
                continue
            erreurs = date_adhesion_errors(beneficiaire, day)
            if erreurs:
                raise ValueError(" ".join(erreurs))
        except ValueError as error:
            result.erreurs.append(f"Ligne {numero} : {error}")
            continue
        result.lignes.append(Ligne(numero, beneficiaire, day))
    return result


# Applying ------------------------------------------------------------------------------------


def report_of(result: Plan, nom_fichier: str) -> Report:
    report = Report(order=["Erreurs"])
    report.header.append(f"Fichier : {nom_fichier}")
    report.counts = {
        "Dates enregistrées": 0 if result.erreurs else len(result.lignes),
        "Déjà enregistrées": result.inchangees,
        "Lignes vides": result.vides,
        "Erreurs": len(result.erreurs),
    }
    if result.erreurs:
        report.footer.append("Aucune date n'a été enregistrée : corrigez le fichier et déposez-le.")
    for erreur in result.erreurs:
        report.add("Erreurs", erreur)
    for ligne in [] if result.erreurs else result.lignes:
        report.add(
            "Dates enregistrées",
            f"{ligne.beneficiaire.nom} : adhésion le {ligne.date:%d/%m/%Y}",
        )
    return report


def apply(result: Plan, user, nom_fichier: str) -> Report:
    """All the dates, or none (an error found on the stored rows undoes them all)."""
    if not result.erreurs:
        try:
            with transaction.atomic():
                for ligne in result.lignes:
                    renseigner_date_adhesion(ligne.beneficiaire, ligne.date, by=user)
        except ValidationError as error:
            result.erreurs += [f"{ligne.beneficiaire.nom} : {m}" for m in error.messages]
    report = report_of(result, nom_fichier)
    if not result.erreurs:
        record_run(
            KIND,
            nom_fichier,
            report,
            created=0,
            updated=len(result.lignes),
            unchanged=result.inchangees,
            skipped=result.vides,
        )
    return report


def import_file(upload, user) -> Report:
    rows = read_rows(upload)
    return apply(plan(rows, user), user, upload.name)
