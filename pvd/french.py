"""French spelling the pages, PDFs and e-mails share."""

import unicodedata
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.formats import get_format

CENTIMES = Decimal("0.01")

VOYELLES = "AEIOUYÂÀÉÈÊËÎÏÔÛÙ"


def de(nom: str) -> str:
    """« de » before a place name, elided or contracted: « de La Courtine », « d'Ussel »,
    « d'Issoudun », « du Blanc », « des Sables-d'Olonne »."""
    if nom.startswith("Le "):
        return f"du {nom[3:]}"
    if nom.startswith("Les "):
        return f"des {nom[4:]}"
    if nom[:1].upper() in VOYELLES:
        return f"d'{nom}"
    return f"de {nom}"


def normalize(text: str) -> str:
    """Lowercase, no accents, hyphens and apostrophes as spaces: how people type names."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    for sep in ("-", "'", "’", "  "):
        stripped = stripped.replace(sep, " ")
    return " ".join(stripped.split())


def euros(montant) -> str:
    """An amount in euros, French style: « 300 000 € », « 1 234,50 € »; « — » when unknown.

    The same as ``floatformat:"-2g"`` (whole amounts without decimals), written with Python's
    formatting: a plan page shows hundreds of amounts, and floatformat costs more than its
    queries.
    """
    if montant is None or montant == "":
        return "—"
    try:
        value = Decimal(repr(montant) if isinstance(montant, float) else montant)
    except (InvalidOperation, TypeError, ValueError):
        return f"{floatformat(montant, '-2g')}\u00a0€"
    if not value.is_finite():
        return f"{floatformat(montant, '-2g')}\u00a0€"
    if value == value.to_integral_value():
        text = f"{int(value):,}"
    else:
        rounded = value.quantize(CENTIMES, ROUND_HALF_UP)
        text = f"{rounded if rounded else abs(rounded):,}"  # « 0,00 », not « -0,00 »
    integer, _, decimals = text.partition(".")
    integer = integer.replace(",", get_format("THOUSAND_SEPARATOR"))
    if decimals:
        integer += get_format("DECIMAL_SEPARATOR") + decimals
    return f"{integer}\u00a0€"


# Durations, largest units first: « 1 jour », « 2 heures », « 1 heure 30 minutes ».
UNITES = (
    (86400, "jour", "jours"),
    (3600, "heure", "heures"),
    (60, "minute", "minutes"),
    (1, "seconde", "secondes"),
)


def duree(delta) -> str:
    """A duration in words, at most its two largest units (« 1 jour 2 heures »)."""
    seconds = max(int(delta.total_seconds()), 0)
    parts = []
    for size, one, many in UNITES:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
        if len(parts) == 2 or (parts and count == 0):
            break
    return " ".join(parts) or "moins d'une seconde"


def de_personne(nom: str) -> str:
    """« de » before a person's name, elided only: « d'Anne Martin », « de Le Gall »."""
    return f"d'{nom}" if nom[:1].upper() in VOYELLES else f"de {nom}"


MOIS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def date_longue(value: date | datetime | None) -> str:
    """« 1er mars 2024 », « 15 mars 2024 », as written in French official documents."""
    if not value:
        return ""
    if isinstance(value, datetime):
        value = (timezone.localtime(value) if timezone.is_aware(value) else value).date()
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MOIS[value.month - 1]} {value.year}"


def date_heure_longue(value: datetime | None) -> str:
    """« 1er mai 2026 à 09:30 », in local time."""
    if not value:
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{date_longue(local.date())} à {local:%H:%M}"


def compte(n: int, singulier: str, pluriel: str, aucun: str, chiffres: str = "") -> str:
    """A count in words: « aucune fiche », « 1 fiche », « 2 fiches » (never « 0 fiches », nor
    « fiche(s) »); ``chiffres`` writes the number (« 1 303 »)."""
    if not n:
        return aucun
    return f"{chiffres or n} {singulier if n == 1 else pluriel}"
