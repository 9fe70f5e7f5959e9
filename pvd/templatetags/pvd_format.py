from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.formats import get_format, number_format

from pvd import french

register = template.Library()
CENTIMES = Decimal("0.01")
# « 1er mai 2026 », « 15 mai 2026 »: French dates for the pages, PDFs and e-mails.
register.filter("date_longue", french.date_longue)
register.filter("date_heure_longue", french.date_heure_longue)
# « de » before a name, elided or contracted: {{ beneficiaire.nom|de }} → « d'Ussel ».
register.filter("de", french.de)


@register.filter
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


@register.simple_tag
def compte(n, singulier: str, pluriel: str, aucun: str) -> str:
    """{% compte n "poste vacant" "postes vacants" "aucun poste vacant" %}."""
    n = n or 0
    return french.compte(n, singulier, pluriel, aucun, number_format(n, force_grouping=True))


@register.simple_tag
def maintenant() -> str:
    """Now, in words: « 1er décembre 2026 à 09:30 » (Django's {% now "j F Y" %} writes « 1 »)."""
    return french.date_heure_longue(timezone.now())
