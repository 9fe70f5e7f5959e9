"""``{% carte_embed %}``: what the dashboards' map needs, from the page's own context.

The dashboards include ``carte/includes/carte_embed.html`` with one line; this tag reads
the territory the page is about (``niveau`` and ``territoire`` of the programme pages, or
else the user's own départements) so the views need no change.
"""

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from carte import choroplethe, geo

register = template.Library()


@register.simple_tag(takes_context=True)
def carte_embed(context) -> dict:
    user = context["request"].user
    niveau, territoire = context.get("niveau"), context.get("territoire")
    code = territoire.code if niveau in ("region", "departement") and territoire else None
    if niveau not in ("france", "region", "departement"):
        niveau = "perimetre"
    query = f"?{niveau}={code}" if code else ""
    return {
        # What the page read from the cache and the queries it sends together, if it did.
        "choroplethe": choroplethe.a_cacher(
            user, niveau, code, timezone.localdate(), context.get("lues"), context.get("lot")
        ),
        "geojson_url": reverse("carte:geojson") + query,
        "liste_url": reverse("carte:carte") + query,
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
        "territoire": territoire if code else None,
        "niveau": niveau,
        "etats": geo.ETATS,
        "vues": geo.VUES,
    }


@register.filter
def pluriel(n: int) -> str:
    """French plural: « 0 convention », « 1 convention », « 2 conventions »."""
    return "s" if n > 1 else ""
