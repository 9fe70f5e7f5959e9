"""The portal's pages for the partners' API keys: national staff create (the key is shown
once), list and revoke them."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import CreateView, ListView

from pvd import policy
from pvd.access import NationalRequiredMixin
from pvd.french import de
from pvd.integrity import create_once
from pvd.pagination import LastPageMixin

from .forms import CleApiForm
from .models import CleApi

A_AFFICHER = "cle_api_a_afficher"


class CleApiListView(NationalRequiredMixin, LastPageMixin, ListView):
    allowed = staticmethod(policy.may_manage_api_keys)
    template_name = "api/cle_list.html"
    paginate_by = 50

    def get_queryset(self):
        return CleApi.objects.select_related("user", "created_by").order_by(
            "revoquee_le", "organisation", "-created_at"
        )


class CleApiCreateView(NationalRequiredMixin, CreateView):
    allowed = staticmethod(policy.may_manage_api_keys)
    form_class = CleApiForm
    template_name = "api/cle_form.html"

    def form_valid(self, form) -> HttpResponse:
        return create_once(self.request, form, lambda: self.create(form))

    def create(self, form) -> HttpResponse:
        cle, texte = CleApi.emettre(
            organisation=form.cleaned_data["organisation"],
            user=form.cleaned_data["user"],
            by=self.request.user,
        )
        # Kept in the session until the next page shows it, once; the portal keeps its hash.
        self.request.session[A_AFFICHER] = [cle.pk, texte]
        return redirect("api-cles:show-new", pk=cle.pk)


@require_GET
def nouvelle_cle(request: HttpRequest, pk: int) -> HttpResponse:
    """The new key, shown once: a reload says it can no longer be shown."""
    if not policy.may_manage_api_keys(request.user):
        raise PermissionDenied("Page réservée à l'équipe nationale de l'ANCT.")
    cle = get_object_or_404(CleApi, pk=pk)
    texte = None
    if request.session.get(A_AFFICHER, [None])[0] == cle.pk:
        texte = request.session.pop(A_AFFICHER)[1]
    response = render(request, "api/cle_creee.html", {"cle": cle, "texte": texte})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def revoquer(request: HttpRequest, pk: int) -> HttpResponse:
    if not policy.may_manage_api_keys(request.user):
        raise PermissionDenied("Page réservée à l'équipe nationale de l'ANCT.")
    cle = get_object_or_404(CleApi, pk=pk)
    if cle.revoquer():
        messages.success(request, f"La clé {de(cle.organisation)} est révoquée.")
    else:
        messages.info(request, "Cette clé était déjà révoquée.")
    return redirect("api-cles:list")
