import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Count,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.views.decorators.http import require_POST
from django.views.generic import CreateView, DetailView, FormView, ListView, UpdateView
from django_filters.views import FilterView

from communes.models import Beneficiaire
from pvd.integrity import IntegrityErrorMixin, save_or_refuse
from pvd.views import NationalRequiredMixin

from .filters import FicheFilter, PlanFilter
from .forms import (
    AxeFormSet,
    FicheForm,
    FinancementFormSet,
    FinanceurForm,
    IndicateurFormSet,
    MesureForm,
    PointForm,
)
from .models import (
    Axe,
    FicheAction,
    Financeur,
    LigneFinancement,
    PointAvancement,
    can_edit_plan,
    ensure_axes,
)

MONEY = DecimalField(max_digits=16, decimal_places=2)

# Totals -------------------------------------------------------------------------------------
# Costs and financing are summed in separate subqueries: summing both over one join would
# count a fiche's cost once per financing line.


def sum_of(queryset, group: str, field: str) -> Coalesce:
    """The sum of `field` over a correlated queryset, grouped by its link to the outer row."""
    inner = queryset.order_by().values(group).annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(inner, output_field=MONEY), Value(Decimal("0")), output_field=MONEY)


def count_of(queryset, group: str) -> Coalesce:
    inner = queryset.order_by().values(group).annotate(total=Count("pk")).values("total")
    return Coalesce(Subquery(inner, output_field=IntegerField()), Value(0))


def with_reste(queryset):
    """What remains to finance, and the financing beyond the cost (`cout`, `finance`)."""
    zero = Value(Decimal("0"))
    return queryset.annotate(
        reste=Greatest(F("cout") - F("finance"), zero, output_field=MONEY),
        depassement=Greatest(F("finance") - F("cout"), zero, output_field=MONEY),
    )


def with_plan_totals(beneficiaires):
    fiches = FicheAction.objects.filter(beneficiaire=OuterRef("pk"))
    lignes = LigneFinancement.objects.filter(fiche__beneficiaire=OuterRef("pk"))
    return with_reste(
        beneficiaires.annotate(
            nb_fiches=count_of(fiches, "beneficiaire"),
            cout=sum_of(fiches, "beneficiaire", "cout_total"),
            finance=sum_of(lignes, "fiche__beneficiaire", "montant"),
        )
    )


def axes_with_totals(beneficiaire: Beneficiaire, fiches) -> list[Axe]:
    """The axes of a plan, each with the count, cost and financing of the given fiches.

    Two GROUP BY queries (fiches, then financing lines, by axis): correlated subqueries per
    axis cost several times more on a national database.
    """
    par_axe = {
        row["axe"]: row
        for row in fiches.order_by()
        .values("axe")
        .annotate(nb=Count("pk"), cout=Coalesce(Sum("cout_total"), Value(Decimal("0"))))
    }
    finance = dict(
        LigneFinancement.objects.filter(fiche__in=fiches)
        .order_by()
        .values("fiche__axe")
        .annotate(total=Sum("montant"))
        .values_list("fiche__axe", "total")
    )
    axes = list(beneficiaire.axes.order_by("numero"))
    for axe in axes:
        row = par_axe.get(axe.pk, {})
        axe.nb_fiches = row.get("nb", 0)
        axe.cout = row.get("cout", Decimal("0"))
        axe.finance = finance.get(axe.pk) or Decimal("0")
        axe.reste = max(axe.cout - axe.finance, Decimal("0"))
        axe.depassement = max(axe.finance - axe.cout, Decimal("0"))
    return axes


def plan_totals(fiches) -> dict:
    totals = fiches.aggregate(
        nb_fiches=Count("pk"), cout=Coalesce(Sum("cout_total"), Value(Decimal("0")))
    )
    totals["finance"] = LigneFinancement.objects.filter(fiche__in=fiches).aggregate(
        total=Coalesce(Sum("montant"), Value(Decimal("0")))
    )["total"]
    totals["reste"] = max(totals["cout"] - totals["finance"], Decimal("0"))
    totals["depassement"] = max(totals["finance"] - totals["cout"], Decimal("0"))
    return totals


@dataclass
class LigneFinanceur:
    nom: str
    montants: list[Decimal]
    total: Decimal


def financement_par_financeur(fiches) -> tuple[list[LigneFinanceur], list[Decimal]]:
    """Financing by funder and status: one row per funder, one column per status."""
    statuts = list(LigneFinancement.Statut.values)
    cells = (
        LigneFinancement.objects.filter(fiche__in=fiches)
        .order_by()
        .values("financeur_id", "financeur__nom", "financeur__ordre", "statut")
        .annotate(montant=Sum("montant"))
    )
    rows: dict[int, LigneFinanceur] = {}
    for cell in sorted(cells, key=lambda c: (c["financeur__ordre"], c["financeur__nom"])):
        row = rows.setdefault(
            cell["financeur_id"],
            LigneFinanceur(cell["financeur__nom"], [Decimal("0")] * len(statuts), Decimal("0")),
        )
        row.montants[statuts.index(cell["statut"])] = cell["montant"]
        row.total += cell["montant"]
    column_totals = [
        sum((r.montants[i] for r in rows.values()), Decimal("0")) for i in range(len(statuts))
    ]
    return list(rows.values()), column_totals


# Timeline -----------------------------------------------------------------------------------


def percent(value: float) -> str:
    """A CSS percentage, with a dot whatever the language of the page."""
    return f"{value:.3f}%"


def etat(fiche: FicheAction) -> str:
    """The modifier of a timeline bar."""
    if fiche.maturite == FicheAction.Maturite.ABANDONNEE:
        return "abandonnee"
    if fiche.maturite == FicheAction.Maturite.LIVREE or (
        fiche.avancement == FicheAction.Avancement.ACHEVEE
    ):
        return "faite"
    return "retard" if fiche.en_retard else ""


def timeline(fiches: list[FicheAction], today: date) -> dict | None:
    """Bars over the years covered by the planned dates of the fiches, and by today."""
    dated = [f for f in fiches if f.date_debut_prevue and f.date_fin_prevue]
    if not dated:
        return None
    start = date(min(today, *(f.date_debut_prevue for f in dated)).year, 1, 1)
    end = date(max(today, *(f.date_fin_prevue for f in dated)).year + 1, 1, 1)
    span = (end - start).days

    def position(day: date) -> float:
        return 100 * (day - start).days / span

    bars = []
    for fiche in dated:
        left = position(fiche.date_debut_prevue)
        width = max(position(fiche.date_fin_prevue) - left + 100 / span, 0.6)
        bars.append(
            {"fiche": fiche, "left": percent(left), "width": percent(width), "etat": etat(fiche)}
        )
    years = [
        {
            "annee": str(year),
            "left": percent(position(date(year, 1, 1))),
            "width": percent(position(date(year + 1, 1, 1)) - position(date(year, 1, 1))),
        }
        for year in range(start.year, end.year)
    ]
    return {
        "bars": bars,
        "years": years,
        # Drawn once, repeated in every row: a loop per row costs more than the page's queries.
        "gridlines": format_html_join(
            "",
            '<span class="pvd-timeline__gridline pvd-timeline__gridline--{}"></span>',
            ((n,) for n in range(1, len(years) + 1)),
        ),
        "today": percent(position(today)),
        "undated": [f for f in fiches if not (f.date_debut_prevue and f.date_fin_prevue)],
    }


def natural_key(fiche: FicheAction) -> tuple:
    """1.2 before 1.10."""
    parts = re.split(r"(\d+)", fiche.reference)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))


# Access -------------------------------------------------------------------------------------

READ, WRITE = "read", "write"


def get_beneficiaire(request: HttpRequest, pk: int, access: str = READ) -> Beneficiaire:
    """404 outside the perimeter; 403 to write for those who only read the plan."""
    beneficiaire = get_object_or_404(
        Beneficiaire.objects.for_user(request.user).select_related("departement"), pk=pk
    )
    if access == WRITE and not can_edit_plan(request.user, beneficiaire):
        raise PermissionDenied("Vous ne pouvez que consulter le plan d'action de ce bénéficiaire.")
    return beneficiaire


def get_fiche(request: HttpRequest, pk: int, access: str = READ) -> FicheAction:
    fiche = get_object_or_404(
        FicheAction.objects.for_user(request.user).select_related(
            "beneficiaire", "axe", "updated_by"
        ),
        pk=pk,
    )
    if access == WRITE and not fiche.can_edit(request.user):
        raise PermissionDenied("Vous ne pouvez que consulter cette fiche action.")
    return fiche


class PlanMixin:
    """Pages under a plan (a beneficiary): `access` decides who may open them."""

    access = WRITE

    def dispatch(self, request, *args, **kwargs):
        self.beneficiaire = get_beneficiaire(request, kwargs["pk"], self.access)
        self.can_edit = can_edit_plan(request.user, self.beneficiaire)
        if self.can_edit:
            ensure_axes(self.beneficiaire)
        return super().dispatch(request, *args, **kwargs)


class FicheMixin:
    access = WRITE

    def dispatch(self, request, *args, **kwargs):
        self.fiche = get_fiche(request, kwargs["pk"], self.access)
        self.beneficiaire = self.fiche.beneficiaire
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(fiche=self.fiche, **kwargs)


# Plans --------------------------------------------------------------------------------------


class PlanListView(FilterView):
    filterset_class = PlanFilter
    template_name = "actions/plan_list.html"
    paginate_by = 50

    def get_queryset(self):
        beneficiaires = Beneficiaire.objects.for_user(self.request.user).actifs()
        return with_plan_totals(beneficiaires.select_related("departement")).order_by("nom")

    def get_filterset_kwargs(self, filterset_class):
        return {**super().get_filterset_kwargs(filterset_class), "user": self.request.user}


class PlanView(PlanMixin, FilterView):
    """A plan: fiches by axis with their totals, financing by funder, timeline."""

    access = READ
    filterset_class = FicheFilter
    template_name = "actions/plan.html"

    def get_queryset(self):
        return self.beneficiaire.fiches.all()

    def get_filterset_kwargs(self, filterset_class):
        kwargs = super().get_filterset_kwargs(filterset_class)
        return {**kwargs, "beneficiaire": self.beneficiaire}

    def get_context_data(self, **kwargs):
        fiches = self.object_list
        rows = sorted(
            fiches.with_financement().defer("description", "objectifs", "jalons"),
            key=natural_key,
        )
        # One reverse() for the page, not one per fiche and per place it is linked from.
        fiche_url = reverse("actions:fiche", args=[0]).replace("/0/", "/{}/")
        for fiche in rows:
            fiche.url = fiche_url.format(fiche.pk)
        by_axe = defaultdict(list)
        for fiche in rows:
            by_axe[fiche.axe_id].append(fiche)
        form = self.filterset.form
        filtered = form.is_bound and form.is_valid() and any(form.cleaned_data.values())
        axes = [
            (axe, by_axe[axe.pk])
            for axe in axes_with_totals(self.beneficiaire, fiches)
            if by_axe[axe.pk] or not filtered
        ]
        financeurs, totaux_statut = financement_par_financeur(fiches)
        return super().get_context_data(
            beneficiaire=self.beneficiaire,
            can_edit=self.can_edit,
            axes=axes,
            filtered=filtered,
            totals=plan_totals(fiches),
            financeurs=financeurs,
            totaux_statut=totaux_statut,
            statuts=LigneFinancement.Statut.choices,
            timeline=timeline(rows, timezone.localdate()),
            **kwargs,
        )


class AxesView(PlanMixin, IntegrityErrorMixin, FormView):
    template_name = "actions/axes.html"

    def get_form(self, form_class=None):
        return AxeFormSet(**self.get_form_kwargs(), instance=self.beneficiaire)

    def get_context_data(self, **kwargs):
        return super().get_context_data(beneficiaire=self.beneficiaire, **kwargs)

    def form_valid(self, form):
        form.save()
        messages.success(self.request, "Axes du plan d'action enregistrés.")
        return redirect("actions:plan", pk=self.beneficiaire.pk)


# Fiches -------------------------------------------------------------------------------------


class FicheDetailView(DetailView):
    template_name = "actions/fiche_detail.html"

    def get_object(self, queryset=None):
        return get_fiche(self.request, self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        fiche = self.object
        user = self.request.user
        finance = fiche.financements.aggregate(total=Coalesce(Sum("montant"), Value(Decimal("0"))))[
            "total"
        ]
        cout = fiche.cout_total
        audit_url = None
        if user.is_national:
            content_type = ContentType.objects.get_for_model(FicheAction)
            audit_url = f"{reverse('audit-log')}?content_type={content_type.pk}"
        return super().get_context_data(
            can_edit=fiche.can_edit(user),
            communes=fiche.communes.all(),
            financements=fiche.financements.select_related("financeur"),
            finance=finance,
            reste=cout - finance if cout is not None and finance < cout else None,
            depassement=finance - cout if cout is not None and finance > cout else None,
            indicateurs=fiche.indicateurs.prefetch_related("mesures"),
            points=fiche.points.select_related("auteur"),
            audit_url=audit_url,
            **kwargs,
        )


class FicheFormMixin:
    """The fiche form with its financing lines, several at once, saved together."""

    form_class = FicheForm
    template_name = "actions/fiche_form.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "beneficiaire": self.beneficiaire}

    def get_financements(self):
        data = self.request.POST if self.request.method == "POST" else None
        fiche = self.object or FicheAction(beneficiaire=self.beneficiaire)
        return FinancementFormSet(data, instance=fiche)

    def get_context_data(self, **kwargs):
        kwargs.setdefault("financements", self.get_financements())
        return super().get_context_data(beneficiaire=self.beneficiaire, **kwargs)

    def form_valid(self, form):
        financements = self.get_financements()
        if financements.is_valid():
            fiche = save_or_refuse(
                form, lambda: form.save(financements=financements, user=self.request.user)
            )
            if fiche is not None:
                messages.success(self.request, f"Fiche « {fiche} » enregistrée.")
                return redirect("actions:fiche", pk=fiche.pk)
        context = self.get_context_data(form=form, financements=financements)
        return self.render_to_response(context)


class FicheCreateView(PlanMixin, FicheFormMixin, CreateView):
    def get_initial(self):
        axe = self.beneficiaire.axes.filter(pk=self.request.GET.get("axe") or None).first()
        if axe is None:
            return {}
        # Suggest the next reference of the axis (e.g. 2.4), which the user may change.
        references = set(self.beneficiaire.fiches.values_list("reference", flat=True))
        rang = axe.fiches.count() + 1
        while f"{axe.numero}.{rang}" in references:
            rang += 1
        return {"axe": axe, "reference": f"{axe.numero}.{rang}"}


class FicheUpdateView(FicheMixin, FicheFormMixin, UpdateView):
    def get_object(self, queryset=None):
        return self.fiche


class IndicateursView(FicheMixin, FormView):
    """The indicators of a fiche, several at once, and a form to add a dated measure."""

    template_name = "actions/indicateurs.html"

    def get_form(self, form_class=None):
        return IndicateurFormSet(**self.get_form_kwargs(), instance=self.fiche)

    def get_context_data(self, **kwargs):
        kwargs.setdefault("mesure_form", MesureForm(fiche=self.fiche))
        return super().get_context_data(
            indicateurs=self.fiche.indicateurs.prefetch_related("mesures"), **kwargs
        )

    def form_valid(self, form):
        form.save()
        messages.success(self.request, "Indicateurs enregistrés.")
        return redirect("actions:indicateurs", pk=self.fiche.pk)


class MesureCreateView(IndicateursView):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        mesure_form = MesureForm(request.POST, fiche=self.fiche)
        if not mesure_form.is_valid():
            indicateurs = IndicateurFormSet(instance=self.fiche)
            context = self.get_context_data(form=indicateurs, mesure_form=mesure_form)
            return self.render_to_response(context)
        mesure = mesure_form.save()
        messages.success(request, f"Mesure enregistrée pour « {mesure.indicateur} ».")
        return redirect("actions:indicateurs", pk=self.fiche.pk)


class PointCreateView(FicheMixin, CreateView):
    form_class = PointForm
    template_name = "actions/point_form.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "fiche": self.fiche}

    def form_valid(self, form):
        form.save(user=self.request.user)
        messages.success(self.request, "Point d'avancement enregistré.")
        return redirect("actions:fiche", pk=self.fiche.pk)


def piece_jointe(request: HttpRequest, pk: int) -> FileResponse:
    """The attachment of a progress entry, served only to those who see the fiche."""
    point = get_object_or_404(
        PointAvancement.objects.filter(
            fiche__in=FicheAction.objects.for_user(request.user)
        ).exclude(piece_jointe=""),
        pk=pk,
    )
    return FileResponse(
        point.piece_jointe.open("rb"),
        as_attachment=True,
        filename=f"point-avancement-{point.pk}.pdf",
        content_type="application/pdf",
    )


# Funders ------------------------------------------------------------------------------------


class FinanceurListView(NationalRequiredMixin, ListView):
    template_name = "actions/financeur_list.html"

    def get_queryset(self):
        return Financeur.objects.annotate(nb_lignes=Count("lignefinancement")).order_by(
            "ordre", "nom"
        )


class FinanceurFormMixin(NationalRequiredMixin, IntegrityErrorMixin):
    model = Financeur
    form_class = FinanceurForm
    template_name = "actions/financeur_form.html"

    def get_success_url(self) -> str:
        return reverse("actions:financeur-list")


class FinanceurCreateView(FinanceurFormMixin, CreateView):
    def form_valid(self, form):
        response = super().form_valid(form)
        if not form.errors:
            messages.success(self.request, f"Financeur « {form.instance.nom} » ajouté.")
        return response


class FinanceurUpdateView(FinanceurFormMixin, UpdateView):
    def get_context_data(self, **kwargs):
        used = self.object.lignefinancement_set.exists()
        return super().get_context_data(used=used, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        if not form.errors:
            messages.success(self.request, f"Financeur « {form.instance.nom} » modifié.")
        return response


@require_POST
def financeur_delete(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.is_national:
        raise PermissionDenied("Page réservée à l'équipe nationale de l'ANCT.")
    financeur = get_object_or_404(Financeur, pk=pk)
    lignes = financeur.lignefinancement_set.count()
    if lignes:
        messages.error(
            request,
            f"« {financeur.nom} » finance {lignes} ligne{'s' if lignes > 1 else ''} de plans "
            "d'action : il ne peut pas être supprimé. Décochez « proposé dans les formulaires » "
            "pour le retirer des listes.",
        )
        return redirect("actions:financeur-update", pk=financeur.pk)
    financeur.delete()
    messages.success(request, f"Financeur « {financeur.nom} » supprimé.")
    return redirect("actions:financeur-list")
