"""The map of the PVD communes: a page, and the data its script draws.

The data (the communes' GeoJSON, the fiches' JSON) is the same for every reader of a
perimeter until what it reads changes: it is kept compressed (gzip) in the cache of page
fragments under the dashboards' version (tableaux/cache.py, renewed by a write to the
``READS`` of carte/geo.py and carte/fiches.py, see carte/apps.py) and the reader's
perimeter, and its ETag is made of that key: a browser that asks again with the ETag it
holds gets a 304 without the data being read or sent again.

The readers who see the whole country read instead the data precomputed per territory
(carte/precalcul.py), served stale while a change's refresh runs; the page reads its counts
of communes and fiches with it.
"""

import gzip
import hashlib
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags, urlencode
from django.views.generic import TemplateView

from actions.models import FicheAction
from actions.plan_cache import fragment_cache
from communes.models import Departement, Region
from pvd import policy
from tableaux import cache as dashboard_cache

from . import choroplethe, fiches, geo, precalcul
from .filters import options_territoire

# Part of the data's cache key and ETag: raise it when the data's shape changes.
VERSION = 2

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


def court(queryset) -> int:
    """How many rows: counted up to LISTE_MAX + 1 only (a query that stops there), then in
    full when there are more, to say how long the list would be (an index-only count, not
    the sort the list needs)."""
    nb = queryset.order_by().values("pk")[: LISTE_MAX + 1].count()
    return nb if nb <= LISTE_MAX else queryset.order_by().count()


def carte_context(request: HttpRequest, filtre: geo.Filtre | None = None) -> dict:
    """What ``carte/includes/carte.html`` needs; dashboards call it with their filter. The
    list of communes only when it is short enough to show, counted in SQL otherwise (or
    read from the data precomputed for the readers who see everything, carte/precalcul.py)."""
    user = request.user
    filtre = filtre if filtre is not None else filtre_from(request)
    if precalcul.partage(user):
        nb_points = precalcul.donnees(precalcul.COMMUNES, filtre)["nb"]
    else:
        nb_points = court(geo.membres(user, filtre))
    points = geo.points(user, filtre) if nb_points <= LISTE_MAX else []
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
        "points": points,
        "nb_points": nb_points,
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
        filtre = carte["filtre"]
        # The fiches action: on the map (fetched by its script) and in the list under it,
        # with the same filter.
        filterset = fiches.filtre_fiches(user, self.request.GET, filtre)
        # The list only when it is short enough to show: the country's 80,000 fiches are
        # counted (or their count read with the precomputed data), not read.
        if precalcul.partage(user) and not fiches.valeurs(filterset):
            nb_fiches = precalcul.donnees(precalcul.FICHES, filtre)["nb"]
        else:
            nb_fiches = court(filterset.qs)
        lignes = fiches.fiches(filterset)[0] if nb_fiches <= LISTE_MAX else []
        query = "&".join(q for q in (filtre.querystring(), filterset.querystring) if q)
        choisi = {
            "departement": filtre.departement.code if filtre.departement else "",
            "region": filtre.region.code if filtre.region else "",
        }
        return super().get_context_data(
            carte=carte,
            fiches_filter=filterset,
            fiches=lignes,
            nb_fiches=nb_fiches,
            fiches_url=reverse("carte:fiches") + (f"?{query}" if query else ""),
            departement_options=options_territoire(
                user, "departement", "Tous", choisi["departement"]
            ),
            region_options=options_territoire(user, "region", "Toutes", choisi["region"]),
            **kwargs,
        )


def donnees_en_cache(
    request: HttpRequest,
    nom: str,
    famille: str,
    variante: str,
    calcul: Callable[[], bytes],
    content_type: str,
) -> HttpResponse:
    """The map's data ``calcul()`` gives (JSON bytes) for the ``variante`` asked (the valid
    filters, not the raw query string: no entry per junk parameter), kept gzipped in the
    cache, with its ETag: 304 when the browser holds it already. Sent gzipped to the
    browsers that accept it (all of them), plain otherwise."""
    duree = dashboard_cache.timeout()
    if duree > 0:
        # The period bounds the ETag's life like the fragments': writes that send no
        # signal (importers) are caught up after at most ``duree``.
        periode = int(time.time() // duree)
        cle = dashboard_cache.fragment_key(
            dashboard_cache.scopes_for(request.user, famille),
            VERSION, nom, policy.perimeter_key(request.user), periode, variante,
        )  # fmt: skip
        etag = f'"{hashlib.sha256(cle.encode()).hexdigest()[:32]}"'
        if etag in parse_etags(request.headers.get("If-None-Match", "").replace("W/", "")):
            return _entetes(HttpResponseNotModified(), etag)
        compresse = fragment_cache().get(cle)
        if compresse is None:
            compresse = gzip.compress(calcul(), mtime=0)
            fragment_cache().set(cle, compresse, duree)
    else:
        compresse = gzip.compress(calcul(), mtime=0)
        etag = f'"{hashlib.sha256(compresse).hexdigest()[:32]}"'
        if etag in parse_etags(request.headers.get("If-None-Match", "").replace("W/", "")):
            return _entetes(HttpResponseNotModified(), etag)
    return _entetes(_corps(request, compresse, content_type), etag)


def servir(request: HttpRequest, entree: dict, content_type: str) -> HttpResponse:
    """A precomputed entry (carte/precalcul.py): 304 when the browser holds its ETag already,
    else its bytes, gzipped as kept (plain for a client that does not accept gzip)."""
    etag = entree["etag"]
    if etag in parse_etags(request.headers.get("If-None-Match", "").replace("W/", "")):
        return _entetes(HttpResponseNotModified(), etag)
    return _entetes(_corps(request, entree["gzip"], content_type), etag)


def _corps(request: HttpRequest, compresse: bytes, content_type: str) -> HttpResponse:
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(compresse, content_type=content_type)
        response["Content-Encoding"] = "gzip"
        return response
    return HttpResponse(gzip.decompress(compresse), content_type=content_type)


def _entetes(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    # Kept by the browser for its reader only, and asked again each time (the ETag).
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ("Cookie", "Accept-Encoding"))
    return response


def carte_geojson(request: HttpRequest) -> HttpResponse:
    filtre = filtre_from(request)
    if precalcul.partage(request.user):
        entree = precalcul.donnees(precalcul.COMMUNES, filtre)
        return servir(request, entree, "application/geo+json")
    return donnees_en_cache(
        request,
        "communes",
        "carte",
        filtre.querystring(),
        lambda: geo.geojson_bytes(request.user, filtre),
        "application/geo+json",
    )


def carte_fiches(request: HttpRequest) -> HttpResponse:
    """The fiches action of the map (carte/fiches.py), within the reader's perimeter."""
    filtre = filtre_from(request)
    filterset = fiches.filtre_fiches(request.user, request.GET, filtre)
    valeurs = fiches.valeurs(filterset)
    if precalcul.partage(request.user) and not valeurs:
        return servir(request, precalcul.donnees(precalcul.FICHES, filtre), "application/json")
    variante = f"{filtre.querystring()}|{urlencode(valeurs)}"
    return donnees_en_cache(
        request,
        "fiches",
        fiches.FAMILLE,
        variante,
        lambda: fiches.donnees(filterset),
        "application/json",
    )


def carte_fiche(request: HttpRequest, pk: int) -> HttpResponse:
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
