"""The dashboards' pages: a beneficiary's « Où en est ma ville ? », the programme's figures
by territory, the préfecture's export and the bilans. What they show is built in
tableaux/dashboards.py (each role's home too, for portail.views.HomeView)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from communes.models import Beneficiaire
from postes.exports import table_response
from pvd import files, policy
from pvd.access import BeneficiaireMixin, get_beneficiaire_for_user

from . import exports
from .dashboards import bilans_context, prefecture_rows, programme_context, ville_context
from .models import Bilan

FORMATS = ("csv", "xlsx")


class VilleView(BeneficiaireMixin, TemplateView):
    """« Où en est ma ville ? » for one beneficiary the user reads (404 otherwise)."""

    template_name = "tableaux/ville.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        today = timezone.localdate()
        context["today"] = today
        context.update(ville_context(self.request.user, self.beneficiaire, today))
        return context


class ProgrammeView(TemplateView):
    """The programme's figures for a région or a département: national readers only."""

    template_name = "tableaux/programme.html"

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_see_synthese(request.user):
            raise PermissionDenied("Page réservée aux lecteurs nationaux du programme.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        level, code = kwargs.get("niveau", "france"), kwargs.get("code")
        today = timezone.localdate()
        fmt = request.GET.get("format")
        if fmt in FORMATS:
            context = programme_context(level, code, today, request.user)
            name = f"programme-pvd-{code}" if code else "programme-pvd-france"
            data = exports.programme_rows(context, level)
            return table_response(data, fmt, name, "Programme PVD")
        context = self.get_context_data(**kwargs)
        context.update(programme_context(level, code, today, request.user))
        return self.render_to_response(context)


class BeneficiairesExportView(TemplateView):
    """The préfecture's table as CSV or XLSX, with its filters."""

    def get(self, request, *args, **kwargs):
        user = request.user
        if not policy.is_prefecture(user):
            raise PermissionDenied("Export réservé aux préfectures.")
        fmt = kwargs["format"]
        if fmt not in FORMATS:
            raise Http404("Format inconnu : CSV ou XLSX.")
        today = timezone.localdate()
        table = prefecture_rows(user, request.GET, today)
        departement = table["filtre"]["departement"]
        if departement and not policy.may_export(user, departement):
            raise PermissionDenied
        data = exports.beneficiaires_rows(table["rows"], today)
        return table_response(data, fmt, "beneficiaires-pvd", "Bénéficiaires")


@require_POST
def request_bilan(request, pk: int):
    """« Télécharger le bilan »: queue the report; the dashboard lists it once ready."""
    beneficiaire = get_beneficiaire_for_user(
        request,
        pk,
        policy.may_request_bilan,
        "Vous ne pouvez pas demander le bilan de ce bénéficiaire.",
    )
    bilan = Bilan.request(beneficiaire=beneficiaire, requested_by=request.user)
    bilan.refresh_from_db(fields=["statut", "erreur"])
    if bilan.statut == Bilan.Statut.ECHEC:
        messages.error(request, bilan.erreur)
    elif bilan.statut == Bilan.Statut.PRET:
        messages.success(request, "Le bilan est prêt : téléchargez-le dans la liste des bilans.")
    else:
        messages.info(
            request, "Bilan en cours de préparation : il apparaîtra dans la liste des bilans."
        )
    return redirect(f"{reverse('tableaux:ville', args=[beneficiaire.pk])}#bilans")


def bilans(request, pk: int):
    """The bilans section alone: polled while a bilan is being prepared."""
    beneficiaire = get_object_or_404(Beneficiaire.objects.for_user(request.user), pk=pk)
    context = {"b": beneficiaire, **bilans_context(request.user, beneficiaire)}
    return render(request, "tableaux/includes/bilans.html", context)


def download_bilan(request, pk: int):
    bilan = get_object_or_404(
        Bilan.objects.filter(
            beneficiaire__in=Beneficiaire.objects.for_user(request.user),
            statut=Bilan.Statut.PRET,
        ),
        pk=pk,
    )
    date = timezone.localtime(bilan.requested_at)
    return files.serve(
        request, bilan.fichier, f"bilan-pvd-{bilan.beneficiaire_id}-{date:%Y-%m-%d-%Hh%M}.pdf"
    )
