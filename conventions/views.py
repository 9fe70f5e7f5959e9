from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.generic import CreateView, DetailView, FormView, ListView, UpdateView
from django_filters.views import FilterView

from communes.models import Beneficiaire
from communes.views import get_beneficiaire
from pvd import policy
from pvd.integrity import IntegrityErrorMixin, create_once
from pvd.models import User

from . import echeances
from .filters import ConventionFilter
from .forms import (
    ConventionForm,
    DateForm,
    PartieFormSet,
    ResiliationForm,
    ScanForm,
    SecteurFormSet,
    default_parties,
)
from .models import Convention, DocumentConvention, Partie, ScanSigne
from .pdf import request_generation

READ_ONLY = "Vous ne pouvez que consulter cette convention."
STATE_ONLY = "Cette action revient à la préfecture du département ou à l'équipe nationale."


class ConventionListView(FilterView):
    filterset_class = ConventionFilter
    template_name = "conventions/convention_list.html"
    paginate_by = 50

    def get_queryset(self):
        return (
            Convention.objects.for_user(self.request.user)
            .select_related("beneficiaire__departement", "convention_modifiee")
            .order_by("beneficiaire__nom", "date_redaction")
        )

    def get_filterset_kwargs(self, filterset_class):
        return {**super().get_filterset_kwargs(filterset_class), "user": self.request.user}


class EcheancesView(ListView):
    """Beneficiaries whose convention-cadre is late or due within three months."""

    template_name = "conventions/echeances.html"
    paginate_by = 50

    def get_queryset(self):
        beneficiaires = Beneficiaire.objects.for_user(self.request.user).actifs()
        return echeances.a_surveiller(beneficiaires.select_related("departement", "epci"))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["lignes"] = [(b, echeances.Echeance.of(b)) for b in context["object_list"]]
        return context


class BeneficiaireMixin:
    """Views under a beneficiary: 404 outside the perimeter, 403 for read-only roles."""

    def dispatch(self, request, *args, **kwargs):
        self.beneficiaire = get_beneficiaire(
            request,
            kwargs["beneficiaire_pk"],
            policy.may_draft_convention,
            "Vous ne pouvez que consulter les conventions de ce bénéficiaire.",
        )
        return super().dispatch(request, *args, **kwargs)


class ConventionCreateView(BeneficiaireMixin, IntegrityErrorMixin, CreateView):
    form_class = ConventionForm
    template_name = "conventions/convention_form.html"

    def get_initial(self):
        return {"type": self.request.GET.get("type", Convention.Type.ADHESION)}

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "beneficiaire": self.beneficiaire}

    def get_context_data(self, **kwargs):
        return super().get_context_data(beneficiaire=self.beneficiaire, **kwargs)

    def form_valid(self, form):
        parent = super().form_valid
        return create_once(self.request, form, lambda: self.create(form, parent))

    @transaction.atomic
    def create(self, form, parent):
        form.instance.created_by = self.request.user
        response = parent(form)
        for partie in default_parties(self.object):
            partie.save()
        messages.success(
            self.request,
            "Convention créée, avec les communes, l'EPCI et l'État comme signataires. "
            "Complétez les parties et leurs représentants.",
        )
        return response

    def get_success_url(self) -> str:
        return reverse("conventions:detail", args=[self.object.pk])


MayConvention = Callable[[User, Convention], bool]


def get_convention(
    request: HttpRequest,
    pk: int,
    may: MayConvention | None = None,
    denied: str = READ_ONLY,
    editable: bool = False,
) -> Convention:
    """404 outside the perimeter; 403 when `may`, a policy question, says no, or to redraft
    a signed convention."""
    convention = get_object_or_404(
        Convention.objects.for_user(request.user).select_related("beneficiaire"), pk=pk
    )
    if may is not None and not may(request.user, convention):
        raise PermissionDenied(denied)
    if editable and not convention.is_editable:
        raise PermissionDenied(
            "Cette convention est signée : elle ne se modifie plus que par avenant."
        )
    return convention


class ConventionMixin:
    """Pages of one convention: by default, to redraft it."""

    may: MayConvention | None = staticmethod(policy.may_edit_convention)
    denied = READ_ONLY
    editable = True

    def get_convention(self) -> Convention:
        return get_convention(self.request, self.kwargs["pk"], self.may, self.denied, self.editable)


class ConventionDetailView(ConventionMixin, DetailView):
    template_name = "conventions/convention_detail.html"
    may = None
    editable = False

    def get_object(self, queryset=None):
        return self.get_convention()

    def get_context_data(self, **kwargs):
        convention = self.object
        user = self.request.user
        return super().get_context_data(
            parties=convention.parties.select_related("commune", "epci"),
            secteurs=convention.secteurs.select_related("commune"),
            documents=convention.documents.select_related("requested_by"),
            scans=convention.scans.select_related("uploaded_by"),
            avenants=convention.avenants.all(),
            signature_errors=convention.signature_errors()
            if convention.is_editable and policy.may_mark_signed(user, convention)
            else [],
            scan_form=ScanForm(),
            envoi_form=DateForm(label="Envoyée le", required=False),
            datation_form=DateForm(label="Date de signature"),
            **kwargs,
        )


class ConventionUpdateView(ConventionMixin, UpdateView):
    form_class = ConventionForm
    template_name = "conventions/convention_form.html"

    def get_object(self, queryset=None):
        return self.get_convention()

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "beneficiaire": self.object.beneficiaire}

    def get_context_data(self, **kwargs):
        return super().get_context_data(beneficiaire=self.object.beneficiaire, **kwargs)

    def form_valid(self, form):
        messages.success(self.request, "Convention mise à jour.")
        return super().form_valid(form)

    def get_success_url(self) -> str:
        return reverse("conventions:detail", args=[self.object.pk])


class FormSetView(ConventionMixin, IntegrityErrorMixin, FormView):
    """Edit the parties or the ORT sectors of a convention, several rows at once."""

    formset_class = None
    template_name = "conventions/formset.html"
    title = ""

    def dispatch(self, request, *args, **kwargs):
        self.convention = self.get_convention()
        return super().dispatch(request, *args, **kwargs)

    def get_form(self, form_class=None):
        return self.formset_class(**self.get_form_kwargs(), instance=self.convention)

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            convention=self.convention,
            title=self.title,
            partenaires=Partie.PARTENAIRES,
            **kwargs,
        )

    def form_valid(self, form):
        form.save()
        messages.success(self.request, f"{self.title} : modifications enregistrées.")
        return redirect("conventions:detail", pk=self.convention.pk)


class PartiesView(FormSetView):
    formset_class = PartieFormSet
    title = "Parties"

    def get_form(self, form_class=None):
        return self.formset_class(
            **self.get_form_kwargs(), instance=self.convention, user=self.request.user
        )


class SecteursView(FormSetView):
    formset_class = SecteurFormSet
    title = "Périmètre de l'ORT : secteurs d'intervention"


# Each state change: who may do it (a policy question), and whether it needs a date.
STATE_CHANGES: dict[str, tuple[MayConvention, str, bool]] = {
    "envoyer": (policy.may_send_for_signature, READ_ONLY, False),
    "signer": (policy.may_mark_signed, STATE_ONLY, False),
    "dater": (policy.may_date_signature, STATE_ONLY, True),
}


@require_POST
def change_state(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Send for signature, mark signed, date a signature: each with its date."""
    may, denied, date_required = STATE_CHANGES[action]
    convention = get_convention(request, pk, may, denied)
    form = DateForm(request.POST, required=date_required)
    try:
        if not form.is_valid():
            raise ValidationError([f"Date : {e}" for e in form.errors.get("date", [])])
        on = form.cleaned_data.get("date")
        if action == "envoyer":
            convention.mark_sent(on=on)
            messages.success(request, "Convention envoyée pour signature.")
        elif action == "signer":
            convention.mark_signed()
            messages.success(request, "Convention signée.")
        elif action == "dater":
            convention.complete_signature_date(on)
            messages.success(request, "Date de signature enregistrée.")
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    return redirect("conventions:detail", pk=convention.pk)


class ResiliationView(ConventionMixin, FormView):
    """Terminate a signed convention: a page says what it does and asks why."""

    form_class = ResiliationForm
    template_name = "conventions/resiliation.html"
    may = staticmethod(policy.may_terminate)
    denied = STATE_ONLY
    editable = False

    def dispatch(self, request, *args, **kwargs):
        self.convention = self.get_convention()
        if not self.convention.is_resiliable:
            messages.error(request, "Seule une convention signée peut être résiliée.")
            return redirect("conventions:detail", pk=self.convention.pk)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(convention=self.convention, **kwargs)

    def form_valid(self, form):
        try:
            self.convention.resilier(on=form.cleaned_data["date"], motif=form.cleaned_data["motif"])
        except ValidationError as error:
            form.add_error(None, error)
            return self.form_invalid(form)
        messages.success(self.request, "Convention résiliée.")
        return redirect("conventions:detail", pk=self.convention.pk)


@require_POST
def generate(request: HttpRequest, pk: int) -> HttpResponse:
    convention = get_convention(request, pk, policy.may_edit_convention)
    document = request_generation(convention, request.user, pdfa=request.POST.get("pdfa") == "1")
    if document.statut == DocumentConvention.Statut.ECHEC:  # the task queue does not answer
        messages.error(request, document.erreur)
    else:
        messages.info(request, f"Génération de la version {document.version} en cours.")
    return redirect("conventions:detail", pk=convention.pk)


def documents(request: HttpRequest, pk: int) -> HttpResponse:
    """The generated versions, polled by the detail page while one is being generated."""
    convention = get_convention(request, pk)
    return render(
        request,
        "conventions/includes/documents.html",
        {
            "convention": convention,
            "documents": convention.documents.select_related("requested_by"),
        },
    )


def download_document(request: HttpRequest, pk: int) -> FileResponse:
    document = get_object_or_404(
        DocumentConvention.objects.filter(
            convention__in=Convention.objects.for_user(request.user),
            statut=DocumentConvention.Statut.PRET,
        ),
        pk=pk,
    )
    return FileResponse(
        document.fichier.open("rb"),
        as_attachment=True,
        filename=f"convention-{document.convention_id}-v{document.version}.pdf",
        content_type="application/pdf",
    )


@require_POST
def upload_scan(request: HttpRequest, pk: int) -> HttpResponse:
    convention = get_convention(request, pk, policy.may_upload_scan)
    form = ScanForm(request.POST, request.FILES)
    if form.is_valid():
        form.save(convention, request.user)
        messages.success(request, "Convention signée déposée.")
    else:
        for error in form.errors.get("fichier", []):
            messages.error(request, f"Fichier refusé : {error}")
    return redirect("conventions:detail", pk=convention.pk)


def download_scan(request: HttpRequest, pk: int) -> FileResponse:
    scan = get_object_or_404(
        ScanSigne.objects.filter(convention__in=Convention.objects.for_user(request.user)), pk=pk
    )
    return FileResponse(
        scan.fichier.open("rb"),
        as_attachment=True,
        filename=f"convention-{scan.convention_id}-signee-{scan.pk}.pdf",
        content_type="application/pdf",
    )
