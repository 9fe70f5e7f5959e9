from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import get_conditional_response
from django.utils.decorators import method_decorator
from django.utils.http import http_date
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView

from .jeux import JEUX, LICENCE, LICENCE_URL, PAR_SLUG, SANS_SIRET, Jeu
from .models import Publication


@method_decorator(login_not_required, name="dispatch")
class OpenDataView(TemplateView):
    """The open data sets, each with its columns, licence, last file and its date."""

    template_name = "opendata/index.html"

    def get_context_data(self, **kwargs):
        dernieres = {p.jeu: p for p in Publication.objects.dernieres()}
        anciennes: dict[str, list] = {}
        for p in Publication.objects.pretes().order_by("-finished_at")[:200]:
            if dernieres.get(p.jeu) != p:
                anciennes.setdefault(p.jeu, []).append(p)
        jeux = [
            (jeu, p, anciennes.get(jeu.slug, [])[:5], _exclusions(jeu, p))
            for jeu in JEUX
            for p in [dernieres.get(jeu.slug)]
        ]
        return super().get_context_data(
            jeux=jeux,
            licence=LICENCE,
            licence_url=LICENCE_URL,
            sans_siret=SANS_SIRET,
            **kwargs,
        )


def _exclusions(jeu: Jeu, publication: Publication | None) -> list[tuple[str, str, int]]:
    """(reason, what it says, rows left out) of a file, in the data set's order."""
    if publication is None or not jeu.exclusions:
        return []
    if publication.lignes_exclues and not publication.exclusions:  # a file built before 2026-12
        return [("", "motif non détaillé pour ce fichier", publication.lignes_exclues)]
    comptes = publication.exclusions
    return [(cle, texte, comptes.get(cle, 0)) for cle, texte in jeu.exclusions.items()]


def _serve(request: HttpRequest, publication: Publication) -> HttpResponse:
    """The stored file, read through the storage API: never built in the request. Dated by
    its refresh, so a client that has it gets a 304 (If-Modified-Since)."""
    modifie = int(publication.finished_at.timestamp())
    pas_change = get_conditional_response(request, last_modified=modifie)
    if pas_change is not None:
        return pas_change
    name = f"{publication.jeu}-{publication.finished_at:%Y-%m-%d}.csv"
    response = FileResponse(
        publication.fichier.open("rb"),
        as_attachment=True,
        filename=name,
        content_type="text/csv; charset=utf-8",
    )
    response["Last-Modified"] = http_date(modifie)
    return response


@login_not_required
@require_GET
def derniere(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in PAR_SLUG:
        raise Http404
    publication = Publication.objects.dernieres().filter(jeu=slug).first()
    if publication is None:
        raise Http404("Ce fichier n'a pas encore été publié.")
    return _serve(request, publication)


@login_not_required
@require_GET
def fichier(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _serve(request, get_object_or_404(Publication.objects.pretes(), jeu=slug, pk=pk))
