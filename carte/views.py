"""The map of the PVD communes: a page, and the GeoJSON its script draws."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.gzip import gzip_page
from django.views.generic import TemplateView

from actions.models import FicheAction
from communes.models import Departement, Region
from pvd import policy

from . import choroplethe, fiches, geo

# Beyond this many communes, the list under the map asks for a département first.
LISTE_MAX = 400


def filtre_from(request: HttpRequest) -> geo.Filtre:
    """The département or région asked for; 404 outside the user's perimeter."""
    departement = request.GET.get("departement", "").strip()
    region = request.GET.get("region", "").strip()
    if departement:
        found = Departement.objects.for_user(request.user).filter(code=departement).first()
        if found is None:
            raise Http404("Ce département n'est pas dans votre territoire.")
        return geo.Filtre(departement=found)
    if region:
        found = Region.objects.for_user(request.user).filter(code=region).first()
        if found is None:
            raise Http404("Cette région n'est pas dans votre territoire.")
        return geo.Filtre(region=found)
    return geo.Filtre()


def carte_context(request: HttpRequest, filtre: geo.Filtre | None = None) -> dict:
    """What ``carte/includes/carte.html`` needs; dashboards call it with their filter."""
    user = request.user
    filtre = filtre if filtre is not None else filtre_from(request)
    points = geo.points(user, filtre)
    if filtre.departement is not None:
        niveau, code = "departement", filtre.departement.code
    elif filtre.region is not None:
        niveau, code = "region", filtre.region.code
    else:
        niveau, code = ("france" if policy.sees_everything(user) else "perimetre"), None
    url = "/carte/donnees.geojson"
    if filtre.querystring():
        url = f"{url}?{filtre.querystring()}"
    return {
        "filtre": filtre,
        "points": points if len(points) <= LISTE_MAX else [],
        "nb_points": len(points),
        "liste_max": LISTE_MAX,
        "choroplethe": choroplethe.a_cacher(user, niveau, code, timezone.localdate()),
        "etats": geo.ETATS,
        "vues": geo.VUES,
        "geojson_url": url,
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
    }


class CarteView(TemplateView):
    template_name = "carte/carte.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        carte = carte_context(self.request)
        # The fiches action: on the map (fetched by its script) and in the list under it,
        # with the same filter.
        filterset = fiches.filtre_fiches(user, self.request.GET, carte["filtre"])
        lignes, _ = fiches.fiches(filterset)
        query = "&".join(q for q in (carte["filtre"].querystring(), filterset.querystring) if q)
        return super().get_context_data(
            carte=carte,
            fiches_filter=filterset,
            fiches=lignes if len(lignes) <= LISTE_MAX else [],
            nb_fiches=len(lignes),
            fiches_url=reverse("carte:fiches") + (f"?{query}" if query else ""),
            departement_choices=Departement.objects.for_user(user).order_by("code"),
            region_choices=Region.objects.for_user(user).order_by("nom"),
            **kwargs,
        )


@gzip_page
def carte_geojson(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(geo.geojson(request.user, filtre_from(request)))
    response["Content-Type"] = "application/geo+json"
    response["Cache-Control"] = "private, no-store"
    return response


@gzip_page
def carte_fiches(request: HttpRequest) -> JsonResponse:
    """The fiches action of the map (carte/fiches.py), within the reader's perimeter."""
    filterset = fiches.filtre_fiches(request.user, request.GET, filtre_from(request))
    response = JsonResponse(fiches.donnees(filterset))
    response["Cache-Control"] = "private, no-store"
    return response


def carte_fiche(request: HttpRequest, pk: int) -> JsonResponse:
    """A fiche's popup on the map: 404 outside the reader's perimeter."""
    fiche = get_object_or_404(FicheAction.objects.for_user(request.user), pk=pk)
    response = JsonResponse(fiches.popup(fiche))
    response["Cache-Control"] = "private, no-store"
    return response


@login_not_required
def departements_svg(request: HttpRequest) -> HttpResponse:
    """The départements' shapes, which the choropleth's <use> elements point to: public
    geometry, the same for everyone, cached by the browser (its URL carries the version)."""
    response = HttpResponse(choroplethe.sprite(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
