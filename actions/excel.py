"""The import of a plan d'action from its Excel workbook (built by excel_template.py).

``open_workbook`` refuses anything but a real XLSX of bounded size, and
``check_identity`` a workbook made from another plan's template; ``read_workbook`` checks
every row of both sheets and collects every error (a formula is one: it is never read).
Each sheet's XML is first streamed once (``etendue``), stopping at the row and cell limits:
a sheet over them is refused before openpyxl reads a row, and openpyxl then reads only up to
the last row holding a value (formatted blank rows below it cost nothing);
``apply_import`` writes the rows in bulk in one transaction (a number of queries that does
not grow with the plan, each row journaled as one save of it would be), and is only called
when there is no error at all.
"""

import copy
import logging
import re
import time
import unicodedata
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from xml.etree.ElementTree import ParseError

from django.core import signing
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from openpyxl import Workbook, load_workbook
from openpyxl.utils.datetime import from_excel, to_excel
from openpyxl.xml.functions import iterparse  # the XML parser openpyxl itself uses

from communes.models import Beneficiaire, Commune
from pvd.audit import journal_bulk
from pvd.bounds import DATE_MAX, DATE_MIN
from pvd.french import de

from .models import (
    Axe,
    FicheAction,
    Financeur,
    Indicateur,
    LigneFinancement,
    default_axes,
    ensure_axes,
)
from .plan import reference_key as tri_naturel
from .signals import plan_imported

logger = logging.getLogger(__name__)

MAX_SIZE = 10 * 1024 * 1024
# A 10 MB zip can inflate a thousandfold: refuse what no plan d'action could ever weigh
# (2 000 fiches with 10 000-character texts stay well below).
MAX_UNCOMPRESSED_SIZE = 60 * 1024 * 1024
MAX_FICHES = 2_000
MAX_FINANCEMENTS = 10_000
MAX_INDICATEURS = 10_000
# Rows read per sheet, blank ones included: Excel writes formatted blank rows, and a forged
# file can declare a million of them, each cheap to store and slow to read.
MAX_LIGNES_LUES = 20_000
# Columns read per row: the template has 19; a row can claim 16 384.
MAX_COLONNES_LUES = 60
# Cells per sheet, blank ones included: a full plan (2,000 fiches × 19 columns, or 10,000
# financing lines × 6) stays well under; a sheet of formatted blank rows or of rows claiming
# 16 384 cells is stopped at it, after a fraction of a second.
MAX_CELLULES_LUES = 150_000
# Reading both sheets may not take longer than this.
MAX_SECONDES = 20
BATCH = 1_000  # rows per INSERT or UPDATE when the import writes
CENTIME = Decimal("0.01")

# The template carries the plan it was made for: a very hidden sheet holds the
# beneficiary's id, signed, so a workbook of another plan is refused.
IDENTITE = "Identité"
IDENTITE_SALT = "actions.excel.plan"

FICHES = "Fiches"
FINANCEMENTS = "Financements"
# Optional: a workbook made from an older template has no such sheet.
INDICATEURS = "Indicateurs"

NBSP = "\u00a0"

CHOIX = {
    "maitre_ouvrage_type": tuple(FicheAction.MaitreOuvrage.choices),
    "maturite": tuple(FicheAction.Maturite.choices),
    "avancement": tuple(FicheAction.Avancement.choices),
    "priorite": tuple(FicheAction.Priorite.choices),
    "nature": tuple(FicheAction.Nature.choices),
    "statut": tuple(LigneFinancement.Statut.choices),
    "type": tuple(Indicateur.Type.choices),
    "frequence": tuple(Indicateur.Frequence.choices),
}


@dataclass(frozen=True)
class Colonne:
    titre: str
    champ: str
    type: str  # texte, reference, axe, choix, date, montant, nombre, booleen, financeur, communes
    largeur: int
    aide: str
    obligatoire: bool = False

    @property
    def choix(self) -> tuple:
        return CHOIX.get(self.champ, ())

    @property
    def liste(self) -> str:
        """The drop-down list of the column, if it has one."""
        return self.champ if self.type in ("axe", "choix", "booleen", "financeur") else ""


AIDE_REFERENCE = (
    "Par exemple 2.3. Identifie la fiche dans le plan : un nouvel import met à jour la fiche "
    "de même référence."
)
# fmt: off
COLONNES_FICHES = [
    Colonne("Référence", "reference", "reference", 12, AIDE_REFERENCE, True),
    Colonne("Titre", "titre", "texte", 45, "L'intitulé de l'action.", True),
    Colonne("Axe", "axe", "axe", 36, "Un axe du plan, choisi dans la liste.", True),
    Colonne("Description", "description", "texte", 50, "Le contenu de l'action."),
    Colonne("Objectifs", "objectifs", "texte", 50, "Objectifs et résultats attendus."),
    Colonne("Maître d'ouvrage (type)", "maitre_ouvrage_type", "choix", 24,
            "Commune, EPCI, SEM / SPL, bailleur social…"),
    Colonne("Maître d'ouvrage (nom)", "maitre_ouvrage", "texte", 30,
            "Par exemple : Commune d'Ussel."),
    Colonne("Partenaires", "partenaires", "texte", 30, "Les partenaires."),
    Colonne("Référent", "referent", "texte", 25, "La personne à contacter."),
    Colonne("Début prévu", "date_debut_prevue", "date", 13, "Une date (JJ/MM/AAAA)."),
    Colonne("Fin prévue", "date_fin_prevue", "date", 13, "Une date, après le début prévu."),
    Colonne("Début réel", "date_debut_reelle", "date", 13, "Une date (JJ/MM/AAAA)."),
    Colonne("Fin réelle", "date_fin_reelle", "date", 13, "Une date, après le début réel."),
    Colonne("Maturité", "maturite", "choix", 16, "Idée, en maturation, prête… (vide : idée)."),
    Colonne("Avancement", "avancement", "choix", 18,
            "Non commencée, étude, démarrage… (vide : non commencée)."),
    Colonne("Priorité", "priorite", "choix", 12, "Haute, moyenne ou basse (vide : moyenne)."),
    Colonne("Budget vert", "budget_vert", "booleen", 12,
            "oui si l'action est favorable à l'environnement (vide : non)."),
    Colonne("Coût total HT", "cout_total", "montant", 17,
            "En euros hors taxes, par exemple 120000 ou 120 000,50."),
    Colonne("Nature", "nature", "choix", 16,
            "Investissement ou fonctionnement (vide : investissement)."),
    Colonne("Secteur d'intervention", "secteur", "texte", 28,
            "Le quartier ou le secteur de l'action, par exemple : centre-bourg."),
    Colonne("Communes concernées", "communes", "communes", 30,
            "Des communes du bénéficiaire, séparées par « ; », par exemple : Ussel ; La "
            "Courtine (vide : aucune)."),
    Colonne("Jalons", "jalons", "texte", 45,
            "Les étapes et leurs dates : étude, consultation, travaux, livraison…"),
]
COLONNES_FINANCEMENTS = [
    Colonne("Référence de la fiche", "reference", "reference", 14,
            "La référence d'une fiche de la feuille Fiches ou du plan.", True),
    Colonne("Financeur", "financeur", "financeur", 26,
            "Un financeur du catalogue, choisi dans la liste.", True),
    Colonne("Dispositif", "dispositif", "texte", 30, "Par exemple : DSIL 2024."),
    Colonne("Montant", "montant", "montant", 16, "En euros.", True),
    Colonne("Statut", "statut", "choix", 14,
            "Prévu, sollicité, notifié ou versé (vide : prévu)."),
    Colonne("Date de décision", "date_decision", "date", 16, "Une date (JJ/MM/AAAA)."),
]
COLONNES_INDICATEURS = [
    Colonne("Référence de la fiche", "reference", "reference", 14,
            "La référence d'une fiche de la feuille Fiches ou du plan.", True),
    Colonne("Indicateur", "libelle", "texte", 45,
            "L'intitulé de l'indicateur : un indicateur de même intitulé sur la fiche est mis à "
            "jour, ses mesures sont gardées.", True),
    Colonne("Type", "type", "choix", 14, "Réalisation ou résultat.", True),
    Colonne("Unité", "unite", "texte", 16, "Par exemple : logements, m², %.", True),
    Colonne("Cible", "cible", "nombre", 12, "Un nombre, par exemple 25 ou 12,5."),
    Colonne("Fréquence de mesure", "frequence", "choix", 20,
            "Mensuelle, trimestrielle, semestrielle ou annuelle (vide : pas de rappel)."),
]
# fmt: on

DATES = [
    ("date_debut_prevue", "date_fin_prevue", "le début prévu", "la fin prévue"),
    ("date_debut_reelle", "date_fin_reelle", "le début réel", "la fin réelle"),
]


# Words and numbers --------------------------------------------------------------------------


def cle(text: str) -> str:
    """A name as compared: no accents, no case, single spaces, plain apostrophes."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    text = text.replace("’", "'").rstrip("* ").lower()
    return " ".join(text.split())


def euros(value: Decimal) -> str:
    """« 350 000 € », « 1 250,50 € »."""
    entier, _, centimes = f"{Decimal(value).quantize(CENTIME):,.2f}".partition(".")
    texte = entier.replace(",", NBSP)
    if centimes != "00":
        texte += f",{centimes}"
    return f"{texte}{NBSP}€"


def date_fr(value: date) -> str:
    return f"{value:%d/%m/%Y}"


def texte_de(value) -> str:
    """A cell as text: 3.0 typed in a cell is « 3 »."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return date_fr(value.date()) if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return date_fr(value)
    return str(value).strip()


class ValeurInvalide(ValueError):
    """A cell that cannot be read: the message says why, in French."""


def lire_texte(value) -> str:
    return texte_de(value)


def valider(modele, champ: str, value) -> None:
    """The bounds the model declares on its field (pvd/bounds.py): the same as the web
    form's and the admin's. A column without a field of the model is the fiche's."""
    if value in (None, ""):
        return
    try:
        field = modele._meta.get_field(champ)
    except FieldDoesNotExist:
        field = FicheAction._meta.get_field(champ)
    if not hasattr(field, "run_validators") or field.is_relation:
        return
    try:
        field.run_validators(value)
    except ValidationError as error:
        message = " ".join(error.messages)
        raise ValeurInvalide(message[:1].lower() + message[1:].rstrip(".")) from None


SEPARATEURS = re.compile(r"[\s\u00a0\u202f']")


def lire_montant(value) -> Decimal | None:
    """A number, or a text in French writing: « 120 000,50 », « 120 000 € »."""
    return lire_decimal(value, "montant")


def lire_nombre(value) -> Decimal | None:
    """A target: « 25 », « 12,5 », « 1 200 »."""
    return lire_decimal(value, "nombre")


def lire_decimal(value, quoi: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or isinstance(value, datetime | date):
        raise ValeurInvalide(f"« {texte_de(value)} » n'est pas un {quoi}")
    if isinstance(value, int | float | Decimal):
        amount = Decimal(str(value))
    else:
        text = SEPARATEURS.sub("", str(value)).replace("€", "").upper().replace("EUROS", "")
        text = text.replace("EUR", "")
        if "," in text:
            text = text.replace(".", "").replace(",", ".")
        elif text.count(".") > 1:
            text = text.replace(".", "")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = None
        if amount is None or not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
            raise ValeurInvalide(f"« {value} » n'est pas un {quoi}") from None
    if not amount.is_finite():
        raise ValeurInvalide(f"« {value} » n'est pas un {quoi}")
    try:
        return amount.quantize(CENTIME, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than any amount has: its bound says so
        return amount


DATE_FR = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
DATE_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
# Excel's serial numbers of the days a date field accepts (pvd/bounds.py).
SERIE_MIN, SERIE_MAX = int(to_excel(DATE_MIN)), int(to_excel(DATE_MAX))


def lire_date(value) -> date | None:
    """An Excel date, or a text « JJ/MM/AAAA » (or « AAAA-MM-JJ »)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    found = None
    if isinstance(value, datetime):
        found = value.date()
    elif isinstance(value, date):
        found = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        # A date the cell does not display as one: Excel's serial number of days.
        if SERIE_MIN <= value <= SERIE_MAX:
            found = from_excel(value).date()
    else:
        text = str(value).strip()
        match = DATE_FR.fullmatch(text)
        parts = (match[3], match[2], match[1]) if match else None
        if not match and (match := DATE_ISO.fullmatch(text)):
            parts = (match[1], match[2], match[3])
        if parts:
            try:
                found = date(*(int(p) for p in parts))
            except ValueError:
                found = None
    if found is None:
        raise ValeurInvalide(f"« {texte_de(value)} » n'est pas une date (JJ/MM/AAAA)")
    return found


def lire_choix(value, choices: tuple) -> str | None:
    text = texte_de(value)
    if not text:
        return None
    known = {}
    for key, label in choices:
        known[cle(label)] = key
        known[cle(key)] = key
    if cle(text) in known:
        return known[cle(text)]
    labels = ", ".join(label for _, label in choices)
    raise ValeurInvalide(f"valeur inconnue « {text} » (valeurs possibles : {labels})")


OUI = {"oui", "o", "x", "vrai", "true", "1", "yes"}
NON = {"non", "n", "faux", "false", "0", "no", ""}


def lire_booleen(value) -> bool:
    if isinstance(value, bool):
        return value
    text = cle(texte_de(value))
    if text in OUI:
        return True
    if text in NON:
        return False
    raise ValeurInvalide(f"valeur inconnue « {texte_de(value)} » (oui ou non)")


# Reading a workbook ------------------------------------------------------------------------


@dataclass(frozen=True)
class Erreur:
    feuille: str
    ligne: int | None
    colonne: str | None
    message: str

    def __str__(self) -> str:
        lieu = [f"Feuille {self.feuille}"]
        if self.ligne:
            lieu.append(f"ligne {self.ligne}")
        if self.colonne:
            lieu.append(f"colonne « {self.colonne} »")
        return f"{', '.join(lieu)} : {self.message}"


@dataclass
class Ligne:
    """A row of a sheet, read: its number in Excel and the values of the columns present."""

    numero: int
    valeurs: dict
    valide: bool = True


@dataclass
class Lecture:
    fiches: list[Ligne] = field(default_factory=list)
    financements: list[Ligne] = field(default_factory=list)
    indicateurs: list[Ligne] = field(default_factory=list)
    erreurs: list[Erreur] = field(default_factory=list)
    # Which optional columns the Fiches sheet has: an absent column leaves its field alone.
    champs_fiches: set[str] = field(default_factory=set)
    echeance: float = field(default_factory=lambda: time.monotonic() + MAX_SECONDES)


class Plan:
    """What rows are checked against: the plan's axes, its fiches and the funders."""

    def __init__(self, beneficiaire: Beneficiaire) -> None:
        self.beneficiaire = beneficiaire
        # A plan not started yet offers the usual axes (saved by the import, not here).
        self.axes = list(beneficiaire.axes.order_by("numero")) or default_axes(beneficiaire)
        self.financeurs = list(Financeur.objects.all())
        self.fiches = {f.reference: f for f in beneficiaire.fiches.all()}
        # Its member communes, and those its fiches already name (a commune that left).
        self.communes = list(
            Commune.objects.filter(
                Q(membres__beneficiaire=beneficiaire, membres__actif=True)
                | Q(ficheaction__beneficiaire=beneficiaire)
            )
            .distinct()
            .order_by("nom")
        )

    def communes_de(self, value) -> list[Commune]:
        """« Ussel (19275) ; La Courtine » → the communes, by INSEE code or by name."""
        found = []
        for morceau in re.split(r"[;\n]", texte_de(value)):
            morceau = morceau.strip()
            if not morceau:
                continue
            code = re.search(r"\((\w{5})\)$", morceau) or re.fullmatch(r"\w{5}", morceau)
            code = code[1] if code and code.groups() else (code[0] if code else None)
            commune = next(
                (c for c in self.communes if c.code == code or cle(c.nom) == cle(morceau)),
                None,
            )
            if commune is None and code is None:
                nom = re.sub(r"\s*\(.*\)$", "", morceau)
                commune = next((c for c in self.communes if cle(c.nom) == cle(nom)), None)
            if commune is None:
                noms = ", ".join(c.nom for c in self.communes) or "aucune"
                raise ValeurInvalide(
                    f"commune inconnue « {morceau} » (communes du bénéficiaire : {noms})"
                )
            if commune not in found:
                found.append(commune)
        return found

    def axe(self, value) -> Axe:
        text = texte_de(value)
        match = re.fullmatch(r"(\d+)\s*(?:[.)\-–:]\s*.*)?", text)
        if match:
            for axe in self.axes:
                if axe.numero == int(match[1]):
                    return axe
        for axe in self.axes:
            if cle(axe.nom) == cle(text) or cle(str(axe)) == cle(text):
                return axe
        noms = ", ".join(str(a) for a in self.axes)
        raise ValeurInvalide(f"axe inconnu « {text} » (axes du plan : {noms})")

    def financeur(self, value) -> Financeur:
        text = texte_de(value)
        for financeur in self.financeurs:
            if cle(financeur.nom) == cle(text):
                return financeur
        noms = ", ".join(f.nom for f in self.financeurs if f.actif)
        raise ValeurInvalide(f"financeur inconnu « {text} » (financeurs du catalogue : {noms})")

    def lire(self, colonne: Colonne, value, modele=FicheAction):
        """The cell's value, within the bounds of the model's field."""
        if colonne.type in ("reference", "texte", "date", "montant", "nombre"):
            lire_valeur = {"date": lire_date, "montant": lire_montant, "nombre": lire_nombre}
            lu = lire_valeur.get(colonne.type, lire_texte)(value)
            valider(modele, colonne.champ, lu)
            return lu
        if colonne.type == "communes":
            return self.communes_de(value)
        if colonne.type == "choix":
            return lire_choix(value, colonne.choix)
        if colonne.type == "booleen":
            return lire_booleen(value)
        if texte_de(value) == "":
            return None
        if colonne.type == "axe":
            return self.axe(value)
        return self.financeur(value)


class FichierRefuse(ValidationError):
    pass


def open_workbook(upload) -> Workbook:
    """The uploaded workbook, read-only; refuses anything but a real XLSX of 10 MB at most."""
    if upload.size > MAX_SIZE:
        raise FichierRefuse(
            f"Le fichier pèse {filesizeformat(upload.size)} : la limite est de "
            f"{filesizeformat(MAX_SIZE)}."
        )
    upload.seek(0)
    head = upload.read(8)
    upload.seek(0)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FichierRefuse(
            "Ce fichier est au format Excel 97-2003 (.xls) : enregistrez-le au format "
            "« Classeur Excel (.xlsx) » puis déposez-le à nouveau."
        )
    refus = FichierRefuse(
        "Ce fichier n'est pas un classeur Excel (.xlsx) valide. Déposez le modèle téléchargé "
        "sur cette page, complété et enregistré au format .xlsx."
    )
    if not head.startswith(b"PK\x03\x04"):
        raise refus
    try:
        with zipfile.ZipFile(upload) as archive:
            names = set(archive.namelist())
            inflated = sum(info.file_size for info in archive.infolist())
            if "xl/workbook.xml" not in names:
                raise refus
            if inflated > MAX_UNCOMPRESSED_SIZE:
                raise FichierRefuse(
                    "Ce classeur est trop volumineux une fois décompressé "
                    f"({filesizeformat(inflated)}, {filesizeformat(MAX_UNCOMPRESSED_SIZE)} au "
                    "plus) : supprimez les lignes vides en fin de feuille, ou repartez du modèle."
                )
            _verifier_feuilles(archive)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise refus from None
    upload.seek(0)
    try:
        # Not data_only: a formula must be seen as one (and refused), not read as its cache.
        return load_workbook(upload, read_only=True, data_only=False)
    except Exception:  # openpyxl raises many kinds of errors on a damaged file
        raise refus from None


def _verifier_feuilles(archive: zipfile.ZipFile) -> None:
    """Stream each sheet's XML (and any large XML part: a forged workbook may put a sheet
    elsewhere) before openpyxl opens it, which would read a sheet whole to find its size."""
    for info in archive.infolist():
        if info.filename.endswith(".xml") and (
            info.filename.startswith("xl/worksheets/") or info.file_size > 1024 * 1024
        ):
            try:
                with archive.open(info) as source:
                    mesure = etendue(source)
            except ParseError:
                continue  # a damaged sheet: its reading reports it (read_workbook)
            if mesure.depassement:
                raise FichierRefuse(
                    f"Une feuille de ce classeur est {mesure.depassement} (lecture arrêtée "
                    f"à sa ligne {mesure.lignes})."
                )


def mark_identity(workbook: Workbook, beneficiaire: Beneficiaire) -> None:
    """Write the plan's signed identity into its template."""
    feuille = workbook.create_sheet(IDENTITE)
    feuille.sheet_state = "veryHidden"
    feuille["A1"] = signing.dumps(beneficiaire.pk, salt=IDENTITE_SALT)


def check_identity(workbook, beneficiaire: Beneficiaire) -> None:
    """Refuse a workbook that is not the template of this plan (or one made from it)."""
    valeur = None
    try:
        rows = workbook[IDENTITE].iter_rows(max_row=1, max_col=1, values_only=True)
        valeur = next(rows, (None,))[0]
    except Exception:  # no such sheet, a chart sheet, damaged XML: no identity
        valeur = None
    try:
        pk = signing.loads(str(valeur), salt=IDENTITE_SALT)
    except signing.BadSignature:
        workbook.close()
        raise FichierRefuse(
            "Ce classeur ne vient pas du modèle de ce plan d'action : téléchargez le modèle "
            "sur cette page, complétez-le et déposez-le."
        ) from None
    if pk != beneficiaire.pk:
        workbook.close()
        raise FichierRefuse(
            "Ce classeur est le modèle du plan d'action d'un autre bénéficiaire : il ne peut "
            f"pas modifier le plan {de(beneficiaire.nom)}. Téléchargez le modèle sur cette page."
        )


def _formule(cells: tuple):
    """The first cell of the row holding a formula, if any."""
    return next((cell for cell in cells if cell.data_type == "f"), None)


def _message_formule(cell) -> str:
    formule = str(getattr(cell.value, "text", cell.value))
    if len(formule) > 40:
        formule = formule[:40] + "…"
    return (
        f"la cellule {cell.coordinate} contient une formule (« {formule} ») : les formules ne "
        "sont pas lues, saisissez la valeur elle-même"
    )


SPREADSHEETML = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
ROW, CELL = f"{SPREADSHEETML}row", f"{SPREADSHEETML}c"


@dataclass
class Etendue:
    """How far a sheet goes, streamed from its XML without building its cells."""

    lignes: int = 0  # rows read
    cellules: int = 0  # cells read
    derniere: int = 0  # the last row holding a value
    depassement: str = ""  # the limit met, if any


def etendue(source) -> Etendue:
    """Stream the sheet's XML once and stop at the first limit met."""
    mesure = Etendue()
    numero = 0
    valeur = False  # the row being read holds a value
    for _, element in iterparse(source):
        if element.tag == CELL:
            mesure.cellules += 1
            if mesure.cellules > MAX_CELLULES_LUES:
                mesure.depassement = (
                    f"trop lourde ({MAX_CELLULES_LUES} cellules au plus, cellules vides "
                    "mises en forme comprises) : supprimez les lignes et colonnes vides en "
                    "fin de feuille, ou repartez du modèle"
                )
                return mesure
            valeur = valeur or len(element) > 0  # a value, an inline string or a formula
            element.clear()
        elif element.tag == ROW:
            mesure.lignes += 1
            try:
                numero = int(element.get("r") or numero + 1)
            except ValueError:
                numero += 1
            if valeur:
                mesure.derniere, valeur = numero, False
            element.clear()
            if mesure.lignes > MAX_LIGNES_LUES:
                mesure.depassement = (
                    f"trop longue ({MAX_LIGNES_LUES} lignes au plus, lignes vides "
                    "comprises) : supprimez les lignes vides en fin de feuille"
                )
                return mesure
    return mesure


def _vide(row: tuple) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def _lire_feuille(
    workbook, nom: str, colonnes: list[Colonne], plan: Plan, lecture: Lecture, limite: int
) -> tuple[list[Ligne], set[str]]:
    if nom == INDICATEURS and nom not in workbook.sheetnames:
        return [], set()
    modele = {FICHES: FicheAction, INDICATEURS: Indicateur}.get(nom, LigneFinancement)
    if nom not in workbook.sheetnames:
        lecture.erreurs.append(
            Erreur(nom, None, None, "feuille absente du classeur (partez du modèle à jour)")
        )
        return [], set()
    feuille = workbook[nom]
    # The sheet is within the limits (open_workbook); openpyxl reads up to its last value.
    # Its read-only sheet gives its XML stream (there is no public way to reach it).
    with feuille._get_source() as source:
        derniere = etendue(source).derniere
    rows = feuille.iter_rows(max_row=max(derniere, 1), max_col=MAX_COLONNES_LUES)
    entetes = [cell.value for cell in next(rows, None) or ()]
    positions = {cle(texte_de(v)): i for i, v in reversed(list(enumerate(entetes))) if v}
    presentes = [(c, positions[cle(c.titre)]) for c in colonnes if cle(c.titre) in positions]
    for colonne in colonnes:
        if colonne.obligatoire and cle(colonne.titre) not in positions:
            lecture.erreurs.append(
                Erreur(nom, 1, colonne.titre, "colonne absente de la ligne d'en-tête")
            )
    if any(c.obligatoire and cle(c.titre) not in positions for c in colonnes):
        return [], set()
    lignes = []
    for numero, cells in enumerate(rows, start=2):
        if numero > MAX_LIGNES_LUES:
            message = (
                f"feuille trop longue ({MAX_LIGNES_LUES} lignes au plus, lignes vides "
                "comprises) : supprimez les lignes vides en fin de feuille"
            )
            lecture.erreurs.append(Erreur(nom, numero, None, message))
            break
        if time.monotonic() > lecture.echeance:
            message = (
                f"lecture interrompue après {MAX_SECONDES} secondes : le classeur est trop "
                "lourd, repartez du modèle téléchargé sur cette page"
            )
            lecture.erreurs.append(Erreur(nom, numero, None, message))
            break
        if formule := _formule(cells):
            colonne = next((c.titre for c, p in presentes if p == formule.column - 1), None)
            lecture.erreurs.append(Erreur(nom, numero, colonne, _message_formule(formule)))
            continue
        row = tuple(cell.value for cell in cells)
        if _vide(row):
            continue
        if len(lignes) == limite:
            lecture.erreurs.append(
                Erreur(nom, numero, None, f"trop de lignes ({limite} au plus par import)")
            )
            break
        ligne = Ligne(numero, {})
        for colonne, position in presentes:
            value = row[position] if position < len(row) else None
            try:
                ligne.valeurs[colonne.champ] = plan.lire(colonne, value, modele)
            except ValeurInvalide as error:
                lecture.erreurs.append(Erreur(nom, numero, colonne.titre, str(error)))
                ligne.valide = False
                continue
            if colonne.obligatoire and ligne.valeurs[colonne.champ] in ("", None):
                lecture.erreurs.append(Erreur(nom, numero, colonne.titre, "valeur obligatoire"))
                ligne.valide = False
        lignes.append(ligne)
    return lignes, {c.champ for c, _ in presentes}


def read_workbook(workbook, beneficiaire: Beneficiaire) -> Lecture:
    """Every row of both sheets, checked; ``erreurs`` lists every problem found."""
    ensure_axes(beneficiaire)  # an import starts the plan: its rows point at saved axes
    plan = Plan(beneficiaire)
    lecture = Lecture()
    feuilles = [
        (FICHES, COLONNES_FICHES, MAX_FICHES),
        (FINANCEMENTS, COLONNES_FINANCEMENTS, MAX_FINANCEMENTS),
        (INDICATEURS, COLONNES_INDICATEURS, MAX_INDICATEURS),
    ]
    lues = []
    try:
        for nom, colonnes, limite in feuilles:
            try:
                lues.append(_lire_feuille(workbook, nom, colonnes, plan, lecture, limite))
            except Exception:  # openpyxl parses each sheet lazily: its XML may be damaged
                logger.warning("Unreadable sheet %s in a workbook", nom, exc_info=True)
                message = "feuille illisible : enregistrez à nouveau le classeur au format .xlsx"
                lecture.erreurs.append(Erreur(nom, None, None, message))
                lues.append(([], set()))
    finally:
        workbook.close()
    (lecture.fiches, lecture.champs_fiches), (lecture.financements, _), (indicateurs, _) = lues
    lecture.indicateurs = indicateurs
    _verifier(lecture, plan)
    _verifier_indicateurs(lecture, plan)
    ordre = [FICHES, FINANCEMENTS, INDICATEURS]
    lecture.erreurs.sort(
        key=lambda e: (ordre.index(e.feuille) if e.feuille in ordre else 0, e.ligne or 0)
    )
    return lecture


def _verifier(lecture: Lecture, plan: Plan) -> None:
    """The checks across rows: dates, duplicates, references, financing over the cost."""
    colonnes = {c.champ: c.titre for c in COLONNES_FICHES}
    premieres: dict[str, int] = {}
    for ligne in lecture.fiches:
        valeurs = ligne.valeurs
        for debut, fin, nom_debut, nom_fin in DATES:
            if valeurs.get(debut) and valeurs.get(fin) and valeurs[fin] < valeurs[debut]:
                lecture.erreurs.append(
                    Erreur(
                        FICHES,
                        ligne.numero,
                        colonnes[fin],
                        f"{nom_fin} ({date_fr(valeurs[fin])}) précède {nom_debut} "
                        f"({date_fr(valeurs[debut])})",
                    )
                )
                ligne.valide = False
        reference = valeurs.get("reference")
        if not reference:
            continue
        if reference in premieres:
            lecture.erreurs.append(
                Erreur(
                    FICHES,
                    ligne.numero,
                    "Référence",
                    f"référence « {reference} » en double (déjà ligne {premieres[reference]})",
                )
            )
            ligne.valide = False
        else:
            premieres[reference] = ligne.numero

    fiches_feuille = {
        ligne.valeurs["reference"]: ligne
        for ligne in lecture.fiches
        if ligne.valeurs.get("reference")
    }
    totaux: dict[str, Decimal] = defaultdict(Decimal)
    incertains: set[str] = set()
    premiere_ligne: dict[str, int] = {}
    for ligne in lecture.financements:
        reference = ligne.valeurs.get("reference")
        if not reference:
            continue
        if reference not in fiches_feuille and reference not in plan.fiches:
            lecture.erreurs.append(
                Erreur(
                    FINANCEMENTS,
                    ligne.numero,
                    "Référence de la fiche",
                    f"la fiche « {reference} » n'est ni dans la feuille Fiches ni dans le plan",
                )
            )
            ligne.valide = False
            continue
        premiere_ligne.setdefault(reference, ligne.numero)
        if ligne.valeurs.get("montant") is None:
            incertains.add(reference)  # its amount has an error of its own
        else:
            totaux[reference] += ligne.valeurs["montant"]

    for reference, total in totaux.items():
        if reference in incertains:
            continue
        ligne = fiches_feuille.get(reference)
        if ligne is not None and "cout_total" in lecture.champs_fiches:
            cout = ligne.valeurs.get("cout_total")  # absent when the cell has an error
        else:
            cout = plan.fiches[reference].cout_total if reference in plan.fiches else None
        if cout is not None and total > cout:
            message = f"le plan de financement ({euros(total)}) dépasse le coût ({euros(cout)})"
            if ligne is not None:
                lecture.erreurs.append(
                    Erreur(FICHES, ligne.numero, "Coût total HT", f"{message} de la fiche")
                )
            else:
                lecture.erreurs.append(
                    Erreur(
                        FINANCEMENTS,
                        premiere_ligne[reference],
                        "Montant",
                        f"{message} de la fiche « {reference} »",
                    )
                )


def _verifier_indicateurs(lecture: Lecture, plan: Plan) -> None:
    """Each indicator names a fiche of the sheet or of the plan, once per fiche."""
    references = {ligne.valeurs.get("reference") for ligne in lecture.fiches} | set(plan.fiches)
    premieres: dict[tuple, int] = {}
    for ligne in lecture.indicateurs:
        reference, libelle = ligne.valeurs.get("reference"), ligne.valeurs.get("libelle")
        if not reference:
            continue
        if reference not in references:
            lecture.erreurs.append(
                Erreur(
                    INDICATEURS,
                    ligne.numero,
                    "Référence de la fiche",
                    f"la fiche « {reference} » n'est ni dans la feuille Fiches ni dans le plan",
                )
            )
            ligne.valide = False
            continue
        if not libelle:
            continue
        cle_indicateur = (reference, cle(libelle))
        if cle_indicateur in premieres:
            lecture.erreurs.append(
                Erreur(
                    INDICATEURS,
                    ligne.numero,
                    "Indicateur",
                    f"indicateur « {libelle} » en double pour la fiche « {reference} » (déjà "
                    f"ligne {premieres[cle_indicateur]})",
                )
            )
            ligne.valide = False
        else:
            premieres[cle_indicateur] = ligne.numero


# Writing the rows ------------------------------------------------------------------------


def nombre(n: int, singulier: str, pluriel: str) -> str:
    """French agreement: « 0 fiche », « 1 fiche », « 2 fiches »."""
    return f"{n} {singulier if n < 2 else pluriel}"


@dataclass
class Bilan:
    creees: list[str] = field(default_factory=list)
    modifiees: list[str] = field(default_factory=list)
    inchangees: list[str] = field(default_factory=list)
    absentes: list[FicheAction] = field(default_factory=list)

    def __str__(self) -> str:
        return ", ".join(
            [
                nombre(len(self.creees), "fiche créée", "fiches créées"),
                nombre(len(self.modifiees), "mise à jour", "mises à jour"),
                nombre(len(self.inchangees), "inchangée", "inchangées"),
            ]
        )


DEFAUTS = {
    "maturite": FicheAction.Maturite.IDEE,
    "avancement": FicheAction.Avancement.NON_COMMENCEE,
    "priorite": FicheAction.Priorite.MOYENNE,
    "nature": FicheAction.Nature.INVESTISSEMENT,
    "maitre_ouvrage_type": "",
}


def _valeurs_fiche(ligne: Ligne) -> dict:
    valeurs = dict(ligne.valeurs)
    for champ, defaut in DEFAUTS.items():
        if champ in valeurs and valeurs[champ] is None:
            valeurs[champ] = defaut
    return valeurs


def _cle_financement(ligne) -> tuple:
    if isinstance(ligne, LigneFinancement):
        return (
            ligne.financeur_id,
            ligne.dispositif,
            ligne.montant,
            ligne.statut,
            ligne.date_decision,
        )
    v = ligne.valeurs
    return (
        v["financeur"].pk,
        v.get("dispositif", ""),
        v["montant"],
        v.get("statut") or LigneFinancement.Statut.PREVU,
        v.get("date_decision"),
    )


@transaction.atomic
def apply_import(lecture: Lecture, beneficiaire: Beneficiaire, user) -> Bilan:
    """Create or update the fiches by reference; replace the financing lines they are given.

    The rows are gathered first (``Ecritures``), then written in bulk: a few queries for the
    whole plan, whatever its size, each row journaled as one save of it would be, and the
    plan's and dashboards' versions and the reminders' resolution triggered once."""
    assert not lecture.erreurs, "an import with errors writes nothing"
    existantes = {
        f.reference: f
        for f in FicheAction.objects.select_for_update()
        .filter(beneficiaire=beneficiaire)
        .prefetch_related("financements__financeur", "communes", "indicateurs")
    }
    financements: dict[str, list[Ligne]] = defaultdict(list)
    for ligne in lecture.financements:
        financements[ligne.valeurs["reference"]].append(ligne)
    indicateurs: dict[str, list[Ligne]] = defaultdict(list)
    for ligne in lecture.indicateurs:
        indicateurs[ligne.valeurs["reference"]].append(ligne)
    bilan = Bilan()
    ecritures = Ecritures(user)
    traitees = set()
    for ligne in lecture.fiches:
        valeurs = _valeurs_fiche(ligne)
        reference = valeurs.pop("reference")
        communes = valeurs.pop("communes", None)
        traitees.add(reference)
        fiche = existantes.get(reference)
        if fiche is None:
            fiche = FicheAction(
                beneficiaire=beneficiaire, reference=reference, updated_by=user, **valeurs
            )
            ecritures.creer(fiche, communes, financements[reference], indicateurs[reference])
            bilan.creees.append(reference)
            continue
        avant = copy.copy(fiche)
        modifiee = False
        for champ, valeur in valeurs.items():
            if champ == "axe":
                modifiee |= fiche.axe_id != valeur.pk
            else:
                modifiee |= getattr(fiche, champ) != valeur
            setattr(fiche, champ, valeur)
        if communes is not None and {c.pk for c in communes} != {
            c.pk for c in fiche.communes.all()
        }:
            modifiee = True
            ecritures.communes.append((fiche, communes))
        enregistree = ecritures.enregistrer(fiche, avant, modifiee, financements[reference])
        ecritures.champs.update(valeurs)
        if ecritures.indicateurs(fiche, indicateurs[reference]) or enregistree:
            bilan.modifiees.append(reference)
        else:
            bilan.inchangees.append(reference)
    # Fiches of the plan only in the Financements sheet (their plan is replaced) or only in
    # the Indicateurs sheet.
    for reference in [*financements, *indicateurs]:
        if reference not in traitees:
            traitees.add(reference)
            fiche = existantes[reference]
            changed = reference in financements and ecritures.enregistrer(
                fiche, copy.copy(fiche), False, financements[reference]
            )
            if ecritures.indicateurs(fiche, indicateurs[reference]) or changed:
                bilan.modifiees.append(reference)
            else:
                bilan.inchangees.append(reference)
    bilan.absentes = sorted(
        (f for ref, f in existantes.items() if ref not in traitees),
        key=lambda f: tri_naturel(f.reference),
    )
    ecritures.write(beneficiaire)
    _verifier_depassements(lecture, beneficiaire, traitees)
    return bilan


def _verifier_depassements(lecture: Lecture, beneficiaire: Beneficiaire, traitees) -> None:
    """The rule of the web form, on what is now stored (a lower cost with lines kept, too),
    in one query for the whole plan."""
    numeros = {ligne.valeurs["reference"]: ligne.numero for ligne in lecture.fiches}
    depassees = (
        FicheAction.objects.filter(beneficiaire=beneficiaire)
        .with_financement()
        .filter(finance__gt=F("cout_total"))
        .order_by("reference")
    )
    refus = []
    for fiche in depassees:
        if fiche.reference not in traitees:
            continue  # not touched by this import
        if message := fiche.refus_depassement(fiche.finance):
            lieu = numeros.get(fiche.reference)
            texte = message[:1].lower() + message[1:].rstrip(".")
            refus.append(
                Erreur(FICHES, lieu, "Coût total HT", f"fiche « {fiche.reference} » : {texte}")
            )
    if refus:
        raise ImportRefuse(refus)


class ImportRefuse(Exception):
    """Rolls back an import whose rows, once written, break a rule checked on the stored plan."""

    def __init__(self, erreurs: list[Erreur]):
        super().__init__(erreurs)
        self.erreurs = erreurs


def _nouvelle_ligne(fiche: FicheAction, ligne: Ligne) -> LigneFinancement:
    v = ligne.valeurs
    return LigneFinancement(
        fiche=fiche,
        financeur=v["financeur"],
        dispositif=v.get("dispositif", ""),
        montant=v["montant"],
        statut=v.get("statut") or LigneFinancement.Statut.PREVU,
        date_decision=v.get("date_decision"),
    )


def _valeurs_indicateur(ligne: Ligne) -> dict:
    v = ligne.valeurs
    return {
        "libelle": v["libelle"],
        "type": v["type"],
        "unite": v["unite"],
        "cible": v.get("cible"),
        "frequence": v.get("frequence") or "",
    }


class Ecritures:
    """What an import writes, gathered row by row, then written in bulk by ``write``."""

    def __init__(self, user) -> None:
        self.user = user
        self.fiches_creees: list[FicheAction] = []
        # (before, after) of each fiche changed, and the fields of the sheet they may change.
        self.fiches_modifiees: list[tuple[FicheAction, FicheAction]] = []
        self.champs: set[str] = set()
        # The fiches whose communes are set (a new fiche's, or a fiche's that changed).
        self.communes: list[tuple[FicheAction, list[Commune]]] = []
        self.lignes_creees: list[LigneFinancement] = []
        self.lignes_supprimees: list[LigneFinancement] = []
        self.indicateurs_crees: list[Indicateur] = []
        # (before, after, fields changed) of each indicator changed.
        self.indicateurs_modifies: list[tuple[Indicateur, Indicateur, list[str]]] = []

    def creer(self, fiche: FicheAction, communes, financements, indicateurs) -> None:
        self.fiches_creees.append(fiche)
        if communes:
            self.communes.append((fiche, communes))
        self.lignes_creees.extend(_nouvelle_ligne(fiche, ligne) for ligne in financements)
        self.indicateurs(fiche, indicateurs)

    def enregistrer(
        self, fiche: FicheAction, avant: FicheAction, modifiee: bool, lignes: list[Ligne]
    ) -> bool:
        """A fiche changed (``modifiee``) or given other financing lines gets a new version;
        its lines are replaced when they differ. True when the fiche changed."""
        anciennes = list(fiche.financements.all())
        changees = Counter(map(_cle_financement, anciennes)) != Counter(
            map(_cle_financement, lignes)
        )
        if not modifiee and not changees:
            return False
        fiche.version += 1
        fiche.updated_by = self.user
        self.fiches_modifiees.append((avant, fiche))
        if changees:
            self.lignes_supprimees.extend(anciennes)
            self.lignes_creees.extend(_nouvelle_ligne(fiche, ligne) for ligne in lignes)
        return True

    def indicateurs(self, fiche: FicheAction, lignes: list[Ligne]) -> bool:
        """Create or update the fiche's indicators by their title; one absent from the sheet
        is kept with its measures. True when something changed."""
        par_libelle = {cle(i.libelle): i for i in fiche.indicateurs.all()} if fiche.pk else {}
        changed = False
        for ligne in lignes:
            valeurs = _valeurs_indicateur(ligne)
            indicateur = par_libelle.get(cle(valeurs["libelle"]))
            if indicateur is None:
                indicateur = Indicateur(fiche=fiche, **valeurs)
                par_libelle[cle(valeurs["libelle"])] = indicateur
                self.indicateurs_crees.append(indicateur)
                changed = True
                continue
            champs = [
                champ
                for champ, valeur in valeurs.items()
                if champ in ligne.valeurs or champ == "libelle"
                if getattr(indicateur, champ) != valeur
            ]
            if champs:
                avant = copy.copy(indicateur)
                for champ in champs:
                    setattr(indicateur, champ, valeurs[champ])
                self.indicateurs_modifies.append((avant, indicateur, champs))
                changed = True
        return changed

    def write(self, beneficiaire: Beneficiaire) -> None:
        """Everything gathered, in bulk, then its journal entries and, once, what a save of
        the plan triggers (actions.signals.plan_imported)."""
        remplacees = [fiche.pk for fiche, _ in self.communes if fiche.pk]
        FicheAction.objects.bulk_create(self.fiches_creees, batch_size=BATCH)
        if self.fiches_modifiees:
            now = timezone.now()
            for _, fiche in self.fiches_modifiees:
                fiche.updated_at = now
            FicheAction.objects.bulk_update(
                [fiche for _, fiche in self.fiches_modifiees],
                sorted(self.champs | {"version", "updated_by", "updated_at"}),
                batch_size=BATCH,
            )
        if self.communes:
            liens = FicheAction.communes.through
            if remplacees:
                liens.objects.filter(ficheaction__in=remplacees).delete()
            liens.objects.bulk_create(
                [
                    liens(ficheaction_id=fiche.pk, commune_id=commune.pk)
                    for fiche, communes in self.communes
                    for commune in communes
                ],
                batch_size=BATCH,
            )
        if self.lignes_supprimees:
            # A raw delete sends no signal: their journal entries are written below, once.
            pks = [ligne.pk for ligne in self.lignes_supprimees]
            LigneFinancement.objects.filter(pk__in=pks)._raw_delete(LigneFinancement.objects.db)
        LigneFinancement.objects.bulk_create(self.lignes_creees, batch_size=BATCH)
        Indicateur.objects.bulk_create(self.indicateurs_crees, batch_size=BATCH)
        if self.indicateurs_modifies:
            Indicateur.objects.bulk_update(
                [indicateur for _, indicateur, _ in self.indicateurs_modifies],
                sorted({champ for _, _, champs in self.indicateurs_modifies for champ in champs}),
                batch_size=BATCH,
            )
        journal_bulk(
            self.user,
            created=[*self.fiches_creees, *self.lignes_creees, *self.indicateurs_crees],
            updated=[
                *((avant, fiche, None) for avant, fiche in self.fiches_modifiees),
                *self.indicateurs_modifies,
            ],
            deleted=self.lignes_supprimees,
        )
        written = (self.fiches_creees, self.fiches_modifiees, self.indicateurs_crees)
        if any(written) or self.indicateurs_modifies:
            plan_imported.send(sender=FicheAction, beneficiaire=beneficiaire)
