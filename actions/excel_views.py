"""The workbook of a plan d'action (template, import) and the exports of fiches action."""

from io import BytesIO

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from django.views.generic import FormView
from dsfr.forms import DsfrBaseForm

from communes.models import Beneficiaire, Departement
from pvd import files, policy
from pvd.access import BeneficiaireMixin, get_beneficiaire_for_user

from . import exports
from .excel import (
    MAX_SIZE,
    ImportRefuse,
    apply_import,
    check_identity,
    open_workbook,
    read_workbook,
)
from .excel_template import template_workbook
from .models import ExportPlan
from .views import PLAN_READ_ONLY


class ImportForm(DsfrBaseForm, forms.Form):
    # Kept here rather than in forms.py: it only serves the import page below.
    fichier = forms.FileField(
        label=f"Classeur Excel (.xlsx, {MAX_SIZE // 2**20} Mo au plus)",
        help_text="Le modèle téléchargé sur cette page, complété.",
    )

    def __init__(self, *args, beneficiaire: Beneficiaire, **kwargs):
        super().__init__(*args, **kwargs)
        self.beneficiaire = beneficiaire

    def clean_fichier(self):
        upload = self.cleaned_data["fichier"]
        self.workbook = open_workbook(upload)
        check_identity(self.workbook, self.beneficiaire)
        return upload


def excel(request: HttpRequest, pk: int) -> HttpResponse:
    beneficiaire = get_beneficiaire_for_user(request, pk)
    return render(
        request,
        "actions/excel.html",
        {
            "beneficiaire": beneficiaire,
            "can_edit": policy.may_edit_plan(request.user, beneficiaire),
            "nb_fiches": beneficiaire.fiches.count(),
            "form": ImportForm(beneficiaire=beneficiaire),
        },
    )


def excel_template(request: HttpRequest, pk: int) -> HttpResponse:
    beneficiaire = get_beneficiaire_for_user(request, pk)
    output = BytesIO()
    template_workbook(beneficiaire).save(output)
    response = HttpResponse(output.getvalue(), content_type=exports.XLSX_CONTENT_TYPE)
    name = f"plan-action-{slugify(beneficiaire.nom)}-modele.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class ExcelImportView(BeneficiaireMixin, FormView):
    """Checks every row first: a workbook with one error imports nothing."""

    form_class = ImportForm
    template_name = "actions/excel_import.html"
    may = staticmethod(policy.may_edit_plan)
    denied = PLAN_READ_ONLY

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "beneficiaire": self.beneficiaire}

    def form_valid(self, form):
        lecture = read_workbook(form.workbook, self.beneficiaire)
        if lecture.erreurs:
            return self.render_to_response(
                self.get_context_data(form=form, erreurs=lecture.erreurs)
            )
        try:
            bilan = apply_import(lecture, self.beneficiaire, self.request.user)
        except ImportRefuse as refused:
            return self.render_to_response(
                self.get_context_data(form=form, erreurs=refused.erreurs)
            )
        return self.render_to_response(
            self.get_context_data(form=ImportForm(beneficiaire=self.beneficiaire), bilan=bilan)
        )


def export_plan(request: HttpRequest, pk: int, format: str) -> HttpResponse:
    beneficiaire = get_beneficiaire_for_user(request, pk)
    fiches = exports.fiches_for(request.user, beneficiaire=beneficiaire)
    name = exports.filename(f"plan-action-{slugify(beneficiaire.nom)}")
    if format == "csv":
        return exports.csv_response(fiches, name)
    lignes = exports.lignes_for(request.user, fiche__beneficiaire=beneficiaire)
    return exports.xlsx_response(fiches, lignes, name)


def get_departement(request: HttpRequest, code: str) -> Departement:
    departement = get_object_or_404(Departement, code=code)
    if not policy.may_export(request.user, departement.code):
        raise PermissionDenied("Vous ne pouvez pas exporter les fiches de ce département.")
    return departement


def export_departement(request: HttpRequest) -> HttpResponse:
    """GET: the file at once (CSV or XLSX); POST: a workbook prepared in the background."""
    data = request.POST if request.method == "POST" else request.GET
    departement = get_departement(request, data.get("departement", ""))
    if request.method == "POST":
        export = exports.request_export(request.user, departement)
        return redirect("actions:export-status", pk=export.pk)
    fiches = exports.fiches_for(request.user, beneficiaire__departement=departement)
    name = exports.filename(f"fiches-action-departement-{departement.code}")
    if data.get("format") == "xlsx":
        lignes = exports.lignes_for(request.user, fiche__beneficiaire__departement=departement)
        return exports.xlsx_response(fiches, lignes, name)
    return exports.csv_response(fiches, name)


def require_national_export(request: HttpRequest) -> None:
    if not policy.may_export(request.user, policy.NATIONAL):
        raise PermissionDenied("L'export national est réservé à l'équipe nationale.")


def export_national_csv(request: HttpRequest) -> HttpResponse:
    require_national_export(request)
    return exports.csv_response(
        exports.fiches_for(request.user), exports.filename("fiches-action-france")
    )


@require_POST
def export_national(request: HttpRequest) -> HttpResponse:
    require_national_export(request)
    export = exports.request_export(request.user)
    return redirect("actions:export-status", pk=export.pk)


def export_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "actions/excel_exports.html",
        {
            "exports": ExportPlan.objects.filter(requested_by=request.user).select_related(
                "departement"
            )[:50],
            "can_export_national": policy.may_export(request.user, policy.NATIONAL),
            "departements": policy.exportable_departements(request.user, Departement.objects.all()),
        },
    )


def get_export(request: HttpRequest, pk: int) -> ExportPlan:
    """Only the requester, or national staff: 404 for anyone else."""
    export = get_object_or_404(
        ExportPlan.objects.for_user(request.user).select_related("departement", "requested_by"),
        pk=pk,
    )
    if not policy.may_see_export(request.user, export):
        raise PermissionDenied("Vous n'avez plus le droit de consulter cet export.")
    return export


def export_status(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "actions/excel_export_status.html", {"export": get_export(request, pk)})


def export_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment, polled by the status page while the workbook is written."""
    return render(
        request, "actions/includes/export_progress.html", {"export": get_export(request, pk)}
    )


def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    export = get_export(request, pk)
    if export.statut != ExportPlan.Statut.PRET or not export.fichier:
        raise Http404("Cet export n'est pas prêt.")
    return files.serve(
        request, export.fichier, exports.export_filename(export), exports.XLSX_CONTENT_TYPE
    )
