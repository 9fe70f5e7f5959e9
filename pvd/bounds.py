"""The bounds of what a user may type, declared once on the models' fields and read from there
by the web forms, the admin and the Excel import (actions/excel.py).

- a date: 1 January 1950 … 31 December 2100 (``date_plausible``);
- an amount in euros: 0 … 1 000 000 000 € (``MONTANT``);
- an indicator's target or measure: -1 000 000 000 … 1 000 000 000 (``nombre_plafonne``);
- a rate: 0 … 100 % (``taux_valide``);
- a single-line text: no control character, CR, LF, NUL, tab… (``texte_une_ligne``);
- a long text (notes, reasons, comments, sources): 10 000 characters, no NUL
  (``TEXTE_LONG`` with ``TEXTE_LONG_VALIDATORS``);
- a web address: 200 characters (``URLField``'s own ``max_length``, ``URL_MAX``);
- a SIRET: 14 digits with a valid check digit (``siret_valide``);
- a query parameter: no control character, or a 400 in French (pvd.middleware).

Bounds of one field, on that field: a post's ETP 0,1 … 1, a co-financing year 2020 … 2040,
a commune's latitude -90 … 90 and longitude -180 … 180, every CharField's ``max_length``.

Messages carry no ``%`` that Django would format: a validator's message is formatted with its
parameters, and « 100 %. » raised a ValueError instead of the message.
"""

import re
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from django.utils import timezone
from django.utils.deconstruct import deconstructible

PREMIERE_ANNEE, DERNIERE_ANNEE = 1950, 2100
DATE_MIN, DATE_MAX = date(PREMIERE_ANNEE, 1, 1), date(DERNIERE_ANNEE, 12, 31)
MONTANT_MAX = Decimal("1000000000")
TEXTE_LONG = 10_000
URL_MAX = 200

CONTROLE = re.compile(r"[\x00-\x1f\x7f]")


def date_plausible(value: date | None) -> None:
    if value is not None and not DATE_MIN <= value <= DATE_MAX:
        raise ValidationError(
            f"Indiquez une date entre {PREMIERE_ANNEE} et {DERNIERE_ANNEE} "
            f"(le {value:%d/%m/%Y} est hors de cette période).",
            code="date_hors_periode",
        )


def montant_positif(value: Decimal | None) -> None:
    if value is not None and value < 0:
        raise ValidationError("Un montant ne peut pas être négatif.", code="montant_negatif")


def montant_plafonne(value: Decimal | None) -> None:
    if value is not None and abs(value) > MONTANT_MAX:
        raise ValidationError(
            "Ce montant dépasse un milliard d'euros : vérifiez la saisie.", code="montant_eleve"
        )


MONTANT = [montant_positif, montant_plafonne]


def nombre_plafonne(value: Decimal | None) -> None:
    """A measure or a target: it may be negative (a fall), not beyond a billion either way."""
    if value is not None and abs(value) > MONTANT_MAX:
        raise ValidationError("Ce nombre dépasse un milliard : vérifiez la saisie.", code="nombre")


def taux_valide(value: Decimal | None) -> None:
    if value is not None and not 0 <= value <= 100:
        raise ValidationError("Le taux va de 0 à 100 %.", code="taux_hors_bornes")


# La Poste's establishments share one SIREN and are numbered outside the Luhn formula: the
# digits of their SIRET add up to a multiple of 5 instead (INSEE's rule for this SIREN).
SIREN_LA_POSTE = "356000000"


def _luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def siret_valide(value: str | None) -> None:
    """A SIRET: 14 digits whose Luhn check holds (La Poste's: their digits' sum, see above)."""
    if not value:
        return
    if not re.fullmatch(r"\d{14}", value):
        raise ValidationError(
            "Le SIRET compte 14 chiffres, sans lettre ni autre signe.", code="siret_format"
        )
    if _luhn(value):
        return
    if value.startswith(SIREN_LA_POSTE) and sum(map(int, value)) % 5 == 0:
        return
    raise ValidationError(
        "Ce SIRET n'est pas valide : son dernier chiffre (clé de contrôle) ne correspond pas "
        "aux 13 autres. Vérifiez-le sur l'annuaire des entreprises "
        "(annuaire-entreprises.data.gouv.fr).",
        code="siret_cle",
    )


def texte_une_ligne(value: str | None) -> None:
    if value and CONTROLE.search(value):
        raise ValidationError(
            "Ce texte tient sur une ligne : retirez les retours à la ligne, tabulations et "
            "caractères de contrôle.",
            code="caractere_controle",
        )


@deconstructible
class LongueurMax(MaxLengthValidator):
    """The length limit of a long text, with a French message that counts."""

    def __init__(self, limit_value: int = TEXTE_LONG):
        super().__init__(limit_value)

    def __call__(self, value) -> None:
        if value is not None and len(value) > self.limit_value:
            raise ValidationError(
                f"Ce texte compte {len(value)} caractères : {self.limit_value} au plus.",
                code="max_length",
            )


TEXTE_LONG_VALIDATORS = [LongueurMax(TEXTE_LONG), ProhibitNullCharactersValidator()]


def formfield(model, name: str, **kwargs):
    """The form field of a model's field with the model's validators: for a plain form that
    writes the field (a model form runs them itself, through the model's full_clean)."""
    model_field = model._meta.get_field(name)
    field = model_field.formfield(**kwargs)
    field.validators = [
        *field.validators,
        *(v for v in model_field.validators if v not in field.validators),
    ]
    return field


def une_ligne(text: str) -> str:
    """A text folded to one line, for an e-mail header (a subject): line breaks and control
    characters become spaces, runs of spaces one."""
    return " ".join(CONTROLE.sub(" ", str(text)).split())


# Dates of events that already happened (a signature, a decision, a recruitment step): never
# in the future. Planned dates (an end of contract, a start) are free.
def date_passee(value: date | None) -> None:
    """Validator: an event that happened is dated today at the latest."""
    if value and value > timezone.localdate():
        raise ValidationError(
            "Cette date est dans le futur : indiquez la date à laquelle l'événement a eu lieu "
            "(aujourd'hui au plus tard).",
            code="date_future",
        )
