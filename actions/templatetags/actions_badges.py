"""Badges of a fiche action, as tags: they stand in every row of a plan, where includes
would cost more than the page's queries."""

from django import template
from django.utils.html import format_html, format_html_join

from actions.models import FicheAction

register = template.Library()

# The labels of a fiche's choices, looked up in a dict: get_FOO_display() rebuilds its dict
# of choices at each call, dozens of times per plan page.
LABELS = {
    "maturite": dict(FicheAction.Maturite.choices),
    "avancement": dict(FicheAction.Avancement.choices),
    "priorite": dict(FicheAction.Priorite.choices),
    "maitre_ouvrage_type": dict(FicheAction.MaitreOuvrage.choices),
}


@register.filter
def libelle(value: str, field: str) -> str:
    """The label of a fiche's choice: {{ fiche.avancement|libelle:"avancement" }}."""
    return LABELS[field].get(value, value)


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
        LABELS["maturite"].get(fiche.maturite, fiche.maturite),
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
