from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, OuterRef, Prefetch, QuerySet
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.generic import CreateView, DetailView, FormView, TemplateView
from django_filters.views import FilterView

from pvd import audit, files, fragments, policy
from pvd.access import BeneficiaireMixin
from pvd.db import ArraySubquery, liees_par_le_serveur
from pvd.integrity import IntegrityErrorMixin, create_once
from pvd.pagination import LastPageMixin

from . import exports, synthese
from .filters import BeneficiaireFilter, CommuneFilter, SelectionFilter
from .forms import BeneficiaireForm, DecisionForm
from .models import (
    Beneficiaire,
    Commune,
    DecisionStatut,
    Departement,
    IdentifiantPVD,
    MembreBeneficiaire,
)

# The modules that render the cached fragments of the lists (pvd/fragments.py adds the
# templates): a deployment that changes them renders the fragments again.
RENDERED_BY = ("communes.views",)


class CommuneListView(LastPageMixin, FilterView):
    filterset_class = CommuneFilter
    template_name = "communes/commune_list.html"
    paginate_by = 50

    def get_queryset(self):
        return Commune.objects.for_user(self.request.user).select_related("departement", "epci")

    def get_filterset_kwargs(self, filterset_class):
        return {**super().get_filterset_kwargs(filterset_class), "user": self.request.user}


class CommuneDetailView(DetailView):
    template_name = "communes/commune_detail.html"

    def get_queryset(self):
        return Commune.objects.for_user(self.request.user).select_related(
            "departement__region", "epci"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        commune = self.object
        if commune.epci_id:
            context["epci_communes"] = (
                Commune.objects.for_user(self.request.user)
                .filter(epci_id=commune.epci_id)
                .exclude(pk=commune.pk)
                .only("code", "nom", "population")
            )
        context["membres"] = commune.membres.select_related("beneficiaire").order_by(
            "-actif", "-created_at"
        )
        context["identifiants_pvd"] = commune.identifiants_pvd.all()
        return context


def beneficiaires_for(user, identifiants: bool = True):
    """The beneficiaries a user sees, with what lists and exports show of them (the PVD
    identifiers of their communes: the detail page and the exports, not the list)."""
    actifs = (
        MembreBeneficiaire.objects.filter(actif=True)
        .select_related("commune")
        .order_by("-commune__population")
    )
    if identifiants:
        actifs = actifs.prefetch_related(
            Prefetch("commune__identifiants_pvd", queryset=IdentifiantPVD.objects.all())
        )
    return (
        Beneficiaire.objects.for_user(user)
        .select_related("departement__region", "epci")
        .with_population()
        .prefetch_related(Prefetch("membres", queryset=actifs, to_attr="membres_actifs"))
    )


def lignes(beneficiaires: QuerySet) -> QuerySet:
    """What the list shows of each beneficiary, as plain values in one query: its active
    communes' names (the most populated first) gathered by the database, no model built."""
    communes = (
        MembreBeneficiaire.objects.filter(beneficiaire=OuterRef("pk"), actif=True)
        .order_by("-commune__population", "commune_id")
        .values("commune__nom")
    )
    return beneficiaires.values(
        "pk",
        "nom",
        "statut",
        "population_totale",
        departement_nom=F("departement__nom"),
        departement_code=F("departement_id"),
        epci_nom=F("epci__nom"),
        noms_communes=ArraySubquery(communes),
    )


class Lignes:
    """The list's rows for its paginator: counted over the filtered beneficiaries alone
    (without the joins that give the rows their département's and EPCI's names), a page
    read as ``lignes``."""

    def __init__(self, beneficiaires: QuerySet):
        self.beneficiaires = beneficiaires

    def count(self) -> int:
        return self.beneficiaires.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        return lignes(self.beneficiaires)[key]


class BeneficiaireListView(LastPageMixin, FilterView):
    filterset_class = BeneficiaireFilter
    template_name = "communes/beneficiaire_list.html"
    paginate_by = 50

    def get_queryset(self):
        if self.request.GET.get("export") in ("csv", "xlsx"):
            return beneficiaires_for(self.request.user).order_by("nom")
        return Beneficiaire.objects.for_user(self.request.user).with_population().order_by("nom")

    def get_filterset_kwargs(self, filterset_class):
        return {**super().get_filterset_kwargs(filterset_class), "user": self.request.user}

    def get(self, request, *args, **kwargs):
        export = request.GET.get("export")
        if export not in ("csv", "xlsx"):
            # The count and the page's rows, prepared by PostgreSQL (planning them cost more
            # than running them).
            with liees_par_le_serveur():
                return super().get(request, *args, **kwargs)
        filterset = self.get_filterset(self.get_filterset_class())
        if not filterset.is_valid():
            return super().get(request, *args, **kwargs)
        columns = request.GET.getlist("colonnes")
        return exports.response(filterset.qs, export, columns, "beneficiaires-pvd")

    def paginate_queryset(self, queryset, page_size):
        return super().paginate_queryset(Lignes(queryset), page_size)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(
            export_columns=[(key, label) for key, (label, _) in exports.COLUMNS.items()],
            default_columns=exports.DEFAULT_COLUMNS,
            can_propose=policy.may_select(self.request.user),
            **kwargs,
        )
        # The table's rows and the filter form are cached on what they show (pvd/fragments.py).
        statuts = dict(Beneficiaire.Statut.choices)
        rows = [
            {
                "pk": ligne["pk"],
                "nom": ligne["nom"],
                "statut": ligne["statut"],
                "statut_label": statuts.get(ligne["statut"], ligne["statut"]),
                "communes": ligne["noms_communes"],
                "departement": f"{ligne['departement_nom']} ({ligne['departement_code']})",
                "epci": ligne["epci_nom"],
                "population": ligne["population_totale"],
            }
            for ligne in context["object_list"]
        ]
        return {
            **context,
            "rows": rows,
            "rows_key": fragments.content_key(rows, *RENDERED_BY),
            "filter_key": fragments.filter_key(
                self.request, context["filter"].cle_des_options, *RENDERED_BY
            ),
            "fragment_timeout": fragments.TIMEOUT,
        }


class BeneficiaireDetailView(DetailView):
    template_name = "communes/beneficiaire_detail.html"

    def get_queryset(self):
        return beneficiaires_for(self.request.user)

    def get_context_data(self, **kwargs):
        beneficiaire = self.object
        codes = [m.commune_id for m in beneficiaire.membres.all()]
        visibles = Commune.objects.for_user(self.request.user).filter(code__in=codes)
        return super().get_context_data(
            conventions=beneficiaire.conventions.select_related("convention_modifiee"),
            can_draft=policy.may_draft_convention(self.request.user, beneficiaire),
            communes_visibles=set(visibles.values_list("code", flat=True)),
            anciens_membres=beneficiaire.membres.filter(actif=False).select_related("commune"),
            decisions=beneficiaire.decisions.select_related("decided_by"),
            can_decide=policy.may_decide(self.request.user, beneficiaire),
            can_date_adhesion=beneficiaire.statut == Beneficiaire.Statut.LAUREAT
            and policy.may_date_adhesion(self.request.user, beneficiaire),
            decision_form=DecisionForm(beneficiaire=beneficiaire)
            if beneficiaire.allowed_transitions()
            else None,
            historique=audit.history(
                beneficiaire, beneficiaire.membres.all(), beneficiaire.decisions.all()
            ),
            **kwargs,
        )


def require_selection_right(user, departement: Departement | None = None) -> None:
    if not policy.may_select(user, departement.code if departement else None):
        raise PermissionDenied("La sélection des communes revient à la préfecture du département.")


class BeneficiaireCreateView(IntegrityErrorMixin, CreateView):
    form_class = BeneficiaireForm
    template_name = "communes/beneficiaire_form.html"

    def dispatch(self, request, *args, **kwargs):
        require_selection_right(request.user)
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        codes = self.request.GET.getlist("communes")
        return {"commune_codes": ", ".join(codes)} if codes else {}

    def get_context_data(self, **kwargs):
        departements = sorted(policy.prefecture_departements(self.request.user))
        return super().get_context_data(departements_prefecture=departements, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def form_valid(self, form):
        response = super().form_valid(form)
        if not form.errors:
            messages.success(self.request, f"Bénéficiaire « {self.object.nom} » proposé.")
        return response

    def get_success_url(self) -> str:
        return reverse("communes:beneficiaire-detail", args=[self.object.pk])


class DecisionCreateView(BeneficiaireMixin, FormView):
    form_class = DecisionForm
    template_name = "communes/decision_form.html"
    may = staticmethod(policy.may_decide)
    denied = "Seule la préfecture du département décide du statut."

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "beneficiaire": self.beneficiaire}

    def form_valid(self, form):
        return create_once(self.request, form, lambda: self.create(form))

    def create(self, form):
        if not self.beneficiaire.allowed_transitions():
            form.add_error(None, "Ce bénéficiaire n'a plus de décision possible.")
            return self.form_invalid(form)
        try:
            decision = form.save(self.request.user)
        except ValidationError as error:
            form.add_error("date_decision", error.messages)
            return self.form_invalid(form)
        messages.success(
            self.request,
            f"Décision enregistrée : {decision.get_nouveau_statut_display()}.",
        )
        return redirect("communes:beneficiaire-detail", pk=self.beneficiaire.pk)


class DecisionDocumentView(DetailView):
    """The signed decision, served only to those who see the beneficiary."""

    def get_queryset(self):
        return DecisionStatut.objects.for_user(self.request.user).exclude(document="")

    def render_to_response(self, context, **kwargs):
        decision = self.object
        return files.serve(self.request, decision.document, f"decision-{decision.pk}.pdf")


class SelectionView(LastPageMixin, FilterView):
    filterset_class = SelectionFilter
    template_name = "communes/selection.html"
    paginate_by = 50

    def dispatch(self, request, *args, **kwargs):
        self.departement = get_object_or_404(
            Departement.objects.for_user(request.user).select_related("region"),
            code=kwargs["code"],
        )
        require_selection_right(request.user, self.departement)
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        communes = Commune.objects.filter(departement=self.departement).select_related("epci")
        return communes.with_active_membership()

    def get_filterset_kwargs(self, filterset_class):
        kwargs = super().get_filterset_kwargs(filterset_class)
        return {**kwargs, "departement": self.departement}

    def get_context_data(self, **kwargs):
        return super().get_context_data(departement=self.departement, **kwargs)


class SyntheseView(TemplateView):
    """Counts per département and région: the national picture."""

    template_name = "communes/synthese.html"

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_see_synthese(request.user):
            raise PermissionDenied("La synthèse nationale est réservée à l'équipe nationale.")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        regions, totals = synthese.par_region()
        return super().get_context_data(
            regions=regions, totals=totals, statuts=Beneficiaire.Statut, **kwargs
        )
