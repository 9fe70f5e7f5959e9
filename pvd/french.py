"""French spelling the pages, PDFs and e-mails share."""

from datetime import date, datetime

from django.utils import timezone

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
