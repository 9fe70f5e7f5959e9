from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.generic import CreateView, DetailView, FormView, ListView, UpdateView
from django_filters.views import FilterView

from communes.models import Beneficiaire
from pvd import audit, files, policy, spreadsheets
from pvd.access import BeneficiaireMixin, get_convention_for_user
from pvd.integrity import IntegrityErrorMixin, create_once
from pvd.models import User
from pvd.pagination import LastPageMixin

from . import echeances
from .filters import ConventionFilter
from .forms import (
    ConventionForm,
    DateAdhesionForm,
    DateForm,
    ImportDatesAdhesionForm,
    PartieFormSet,
    ResiliationForm,
    ScanForm,
    SecteurFormSet,
)
from .importers import adhesions
from .models import Convention, DocumentConvention, Partie, ScanSigne
from .pdf import freeze_signed, request_generation

READ_ONLY = "Vous ne pouvez que consulter cette convention."
STATE_ONLY = "Cette action revient à la préfecture du département ou à l'équipe nationale."


class ConventionListView(LastPageMixin, FilterView):
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


class EcheancesView(LastPageMixin, ListView):
    """Beneficiaries whose convention-cadre is late or due within three months."""

    template_name = "conventions/echeances.html"
    paginate_by = 50

    def get_queryset(self):
        beneficiaires = Beneficiaire.objects.for_user(self.request.user).actifs()
        return echeances.a_surveiller(beneficiaires.select_related("departement", "epci"))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["lignes"] = [(b, echeances.Echeance.of(b)) for b in context["object_list"]]
        # The deadlines this list cannot show: lauréats whose adhésion date is unknown.
        sans_date = echeances.sans_date_adhesion(
            Beneficiaire.objects.for_user(self.request.user).select_related("departement")
        )
        context["sans_date"] = list(sans_date)
        context["may_import"] = policy.may_import_adhesion_dates(self.request.user)
        return context


ADHESION_STATE_ONLY = (
    "La date d'adhésion se renseigne par la préfecture du département ou l'équipe nationale."
)


class DateAdhesionView(BeneficiaireMixin, FormView):
    """Fill one beneficiary's unknown adhésion date."""

    form_class = DateAdhesionForm
    template_name = "conventions/date_adhesion.html"
    beneficiaire_kwarg = "beneficiaire_pk"
    may = staticmethod(policy.may_date_adhesion)
    denied = ADHESION_STATE_ONLY

    def get_initial(self):
        return {"date": self.beneficiaire.date_adhesion_saisie}

    def get_context_data(self, **kwargs):
        return super().get_context_data(beneficiaire=self.beneficiaire, **kwargs)

    def form_valid(self, form):
        try:
            echeances.renseigner_date_adhesion(
                self.beneficiaire, form.cleaned_data["date"], by=self.request.user
            )
        except ValidationError as error:
            form.add_error("date", error.messages)
            return self.form_invalid(form)
        messages.success(
            self.request,
            f"Date d'adhésion enregistrée : {form.cleaned_data['date']:%d/%m/%Y}.",
        )
        return redirect("communes:beneficiaire-detail", pk=self.beneficiaire.pk)


class ImportDatesAdhesionView(FormView):
    """Fill adhésion dates from a file: every row checked first, all recorded or none."""

    form_class = ImportDatesAdhesionForm
    template_name = "conventions/import_dates_adhesion.html"

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_import_adhesion_dates(request.user):
            raise PermissionDenied(ADHESION_STATE_ONLY)
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        upload = form.cleaned_data["fichier"]
        try:
            report = adhesions.import_file(upload, self.request.user)
        except adhesions.FichierRefuse as error:
            form.add_error("fichier", error.messages)
            return self.form_invalid(form)
        refused = bool(report.counts["Erreurs"])
        return self.render_to_response(
            self.get_context_data(
                form=ImportDatesAdhesionForm() if not refused else form,
                report=report,
                # A plain list: the template must not look « items » up in a defaultdict.
                sections=[(name, items) for name, items in report.sections.items() if items],
                refused=refused,
            )
        )


def modele_dates_adhesion(request: HttpRequest, format: str) -> HttpResponse:
    """The lauréats the user may date whose adhésion date is unknown: the file to fill."""
    if not policy.may_import_adhesion_dates(request.user):
        raise PermissionDenied(ADHESION_STATE_ONLY)
    if format not in ("csv", "xlsx"):
        raise Http404("Format inconnu : CSV ou XLSX.")
    beneficiaires = echeances.sans_date_adhesion(
        Beneficiaire.objects.for_user(request.user).select_related("departement")
    ).prefetch_related("membres")
    rows = (
        [b.pk, min((m.commune_id for m in b.membres.all() if m.actif), default=""), b.nom, ""]
        for b in beneficiaires
        if policy.may_date_adhesion(request.user, b)
    )
    name = "dates-adhesion-a-completer"
    if format == "xlsx":
        return spreadsheets.xlsx_response(adhesions.HEADER, rows, name, "Dates d'adhésion")
    return spreadsheets.csv_response(adhesions.HEADER, rows, name)


class ConventionCreateView(BeneficiaireMixin, IntegrityErrorMixin, CreateView):
    form_class = ConventionForm
    template_name = "conventions/convention_form.html"
    beneficiaire_kwarg = "beneficiaire_pk"
    may = staticmethod(policy.may_draft_convention)
    denied = "Vous ne pouvez que consulter les conventions de ce bénéficiaire."

    def get_initial(self):
        return {"type": self.request.GET.get("type", Convention.Type.ADHESION)}

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "beneficiaire": self.beneficiaire}

    def form_valid(self, form):
        parent = super().form_valid
        return create_once(self.request, form, lambda: self.create(form, parent))

    @transaction.atomic
    def create(self, form, parent):
        form.instance.created_by = self.request.user
        response = parent(form)  # the form adds the usual signatories
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
    """pvd.access's helper (404 outside the perimeter, 403 when `may` says no); 403 too to
    redraft a signed convention."""
    convention = get_convention_for_user(request, pk, may, denied)
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
            historique=audit.history(
                convention,
                convention.parties.all(),
                convention.secteurs.all(),
                convention.scans.all(),
            ),
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
            with transaction.atomic():
                convention.mark_signed(by=request.user)
                freeze_signed(convention, request.user)
            messages.success(
                request,
                "Convention signée. Sa version signée, avec le plan d'action de ce jour en "
                "annexe, est en cours de génération : elle sera conservée telle quelle.",
            )
        elif action == "dater":
            convention.complete_signature_date(on, by=request.user)
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
        messages.info(
            request,
            f"Génération de la version {document.version} "
            f"({document.get_nature_display().lower()}) en cours.",
        )
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


def download_document(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(
        DocumentConvention.objects.filter(
            convention__in=Convention.objects.for_user(request.user),
            statut=DocumentConvention.Statut.PRET,
        ),
        pk=pk,
    )
    return files.serve(request, document.fichier, document.result_filename())


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


def download_scan(request: HttpRequest, pk: int) -> HttpResponse:
    scan = get_object_or_404(
        ScanSigne.objects.filter(convention__in=Convention.objects.for_user(request.user)), pk=pk
    )
    return files.serve(
        request, scan.fichier, f"convention-{scan.convention_id}-signee-{scan.pk}.pdf"
    )
