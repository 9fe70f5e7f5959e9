"""Badges of a fiche action, as tags: they stand in every row of a plan, where includes
would cost more than the page's queries."""

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()

MATURITE_CLASSES = {
    "maturation": " fr-badge--info",
    "prete": " fr-badge--new",
    "engagee": " fr-badge--purple-glycine",
    "livree": " fr-badge--success",
    "abandonnee": " fr-badge--warning",
}


def _size(sm: bool) -> str:
    return " fr-badge--sm" if sm else ""


@register.simple_tag
def maturite_badge(fiche, sm: bool = False) -> str:
    return format_html(
        '<span class="fr-badge fr-badge--no-icon{}{}">{}</span>',
        MATURITE_CLASSES.get(fiche.maturite, ""),
        _size(sm),
        fiche.get_maturite_display(),
    )


@register.simple_tag
def fiche_badges(fiche, sm: bool = False) -> str:
    """Late, budget vert."""
    badges = []
    if fiche.en_retard:
        badges.append(("fr-badge--error", "En retard"))
    if fiche.budget_vert:
        badges.append(("fr-badge--green-emeraude", "Budget vert"))
    return format_html_join(
        " ",
        '<span class="fr-badge {} fr-badge--no-icon{}">{}</span>',
        ((css, _size(sm), label) for css, label in badges),
    )
