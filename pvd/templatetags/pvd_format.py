from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def euros(montant) -> str:
    """An amount in euros, French style: « 300 000 € », « 1 234,50 € »; « — » when unknown."""
    if montant is None or montant == "":
        return "—"
    return f"{floatformat(montant, '-2g')}\u00a0€"
