from django import template
from django.utils import timezone
from django.utils.formats import number_format

from pvd import french

register = template.Library()

# The amounts of pages, PDFs and exports are written by one function (pvd/french.py).
register.filter("euros", french.euros)
# « 1er mai 2026 », « 15 mai 2026 »: French dates for the pages, PDFs and e-mails.
register.filter("date_longue", french.date_longue)
register.filter("date_heure_longue", french.date_heure_longue)
# « de » before a name, elided or contracted: {{ beneficiaire.nom|de }} → « d'Ussel ».
register.filter("de", french.de)


@register.simple_tag
def compte(n, singulier: str, pluriel: str, aucun: str) -> str:
    """{% compte n "poste vacant" "postes vacants" "aucun poste vacant" %}."""
    n = n or 0
    return french.compte(n, singulier, pluriel, aucun, number_format(n, force_grouping=True))


@register.simple_tag
def maintenant() -> str:
    """Now, in words: « 1er décembre 2026 à 09:30 » (Django's {% now "j F Y" %} writes « 1 »)."""
    return french.date_heure_longue(timezone.now())
