from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def table_region(*parts) -> str:
    """The attributes of a DSFR table's scrolling container (``fr-table__container``): a
    table wider than a phone scrolls inside it, so the keyboard must reach it (focusable)
    and a screen reader must name it (a labelled region). Use the table's caption:
    ``<div class="fr-table__container" {% table_region "Fiches de l’axe" axe.numero %}>``."""
    label = " ".join(str(part) for part in parts if part not in (None, ""))
    return format_html('tabindex="0" role="region" aria-label="{}"', label)
