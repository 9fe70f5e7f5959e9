"""The portal's pages for the partners' API keys: national staff create (the key is shown
once), list and revoke them."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.generic import CreateView, ListView

from pvd import policy
from pvd.french import de
from pvd.access import NationalRequiredMixin

from .forms import CleApiForm
from .models import CleApi


class CleApiListView(NationalRequiredMixin, ListView):
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
        cle, texte = CleApi.emettre(
            organisation=form.cleaned_data["organisation"],
            user=form.cleaned_data["user"],
            by=self.request.user,
        )
        # Shown in this answer only: the portal keeps its hash, never the key.
        response = render(self.request, "api/cle_creee.html", {"cle": cle, "texte": texte})
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
