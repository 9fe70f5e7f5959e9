"""The convention-cadre deadline for pages of the apps below conventions (the beneficiary's
page in communes/): they show it without importing conventions."""

from django import template

from communes.models import Beneficiaire

from ..echeances import Echeance, with_echeances

register = template.Library()


@register.simple_tag
def echeance_de(beneficiaire: Beneficiaire) -> Echeance:
    """`{% echeance_de beneficiaire as echeance %}`: one query."""
    return Echeance.of(with_echeances(Beneficiaire.objects.filter(pk=beneficiaire.pk)).get())
