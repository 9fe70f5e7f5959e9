from hashlib import sha256

from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Count,
    Q,
)
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_POST
from django.views.generic import CreateView, DetailView, FormView, ListView, UpdateView
from django_filters.views import FilterView

from communes.models import Beneficiaire
from pvd import audit, files, policy
from pvd.access import (
    BeneficiaireMixin,
    NationalRequiredMixin,
    get_beneficiaire_for_user,
    get_fiche_for_user,
)
from pvd.integrity import IntegrityErrorMixin, create_once, save_or_refuse
from pvd.pagination import LastPageMixin

from .fiche import Fiche
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
    FicheAction,
    Financeur,
    LigneFinancement,
    PointAvancement,
    ensure_axes,
)
from .plan import Plan, with_plan_totals
from .plan_cache import (
    PAGE_TIMEOUT,
    cached_page,
    code_version,
    fragment_cache,
    store,
    store_page,
)

# Access -------------------------------------------------------------------------------------

READ, WRITE = "read", "write"


PLAN_READ_ONLY = "Vous ne pouvez que consulter le plan d'action de ce bénéficiaire."
FICHE_READ_ONLY = "Vous ne pouvez que consulter cette fiche action."


def may_edit_fiche(user, fiche: FicheAction) -> bool:
    return fiche.can_edit(user)


class PlanMixin(BeneficiaireMixin):
    """Pages under a plan (a beneficiary): `access` decides who may open them. A page that
    writes (`access = WRITE`) needs a started plan: its GET sends back to the plan otherwise
    (a GET writes nothing; « Commencer le plan d'action » does, by POST)."""

    access = WRITE
    denied = PLAN_READ_ONLY

    @property
    def may(self):
        return policy.may_edit_plan if self.access == WRITE else None

    @cached_property
    def can_edit(self) -> bool:
        return policy.may_edit_plan(self.request.user, self.beneficiaire)

    @cached_property
    def started(self) -> bool:
        return self.beneficiaire.axes.exists()

    def get(self, request, *args, **kwargs):
        if self.access == WRITE and not self.started:
            return redirect("actions:plan", pk=self.beneficiaire.pk)
        return super().get(request, *args, **kwargs)


@require_POST
def plan_start(request: HttpRequest, pk: int) -> HttpResponse:
    """« Commencer le plan d'action »: its first write gives it the usual axes."""
    beneficiaire = get_beneficiaire_for_user(request, pk, policy.may_edit_plan, PLAN_READ_ONLY)
    ensure_axes(beneficiaire)
    messages.success(request, "Plan d'action commencé avec les axes habituels de l'ORT.")
    return redirect("actions:plan", pk=beneficiaire.pk)


class FicheMixin:
    access = WRITE

    def dispatch(self, request, *args, **kwargs):
        may = may_edit_fiche if self.access == WRITE else None
        self.fiche = get_fiche_for_user(request, kwargs["pk"], may, FICHE_READ_ONLY)
        self.beneficiaire = self.fiche.beneficiaire
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(fiche=self.fiche, **kwargs)


# Plans --------------------------------------------------------------------------------------


class PlanListView(LastPageMixin, FilterView):
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

    def get(self, request, *args, **kwargs):
        if request.GET:
            return super().get(request, *args, **kwargs)
        # No search: no filterset (its empty form is cached with the page's parts, and built
        # only when rendered again: ``empty_filter_form``).
        self.object_list = self.get_queryset()
        return self.render_to_response(
            self.get_context_data(filter=None, object_list=self.object_list)
        )

    def empty_filter_form(self):
        return self.get_filterset(self.get_filterset_class()).form

    def get_context_data(self, **kwargs):
        today = timezone.localdate()
        plan = Plan(
            self.beneficiaire,
            self.object_list,
            today,
            filtered=bool(self.request.GET) and self.filterset.filtered,
            whole=not self.request.GET,  # no search: the plan's fiches, all of them
        )
        context = super().get_context_data(can_edit=self.can_edit, plan=plan, **kwargs)
        if self.request.GET:  # a search is rendered each time
            page = self.render_page(context, plan)
            store(plan.rendered)
        else:
            # The plain page is cached until the plan changes: one round trip when it is
            # there, and otherwise its parts that did not change read in one and the page
            # and its new parts stored in one (actions/plan_cache.py).
            variant = f"{today}-{self.can_edit}"
            version, filter_version, key, page, earlier = cached_page(self.beneficiaire.pk, variant)
            if page is None:
                plan.cache_filter(self.empty_filter_form, filter_version)
                content = plan.content(self.can_edit)
                if earlier and earlier[0] == content:
                    page = earlier[1]  # the plan changed, not what its page shows
                else:
                    page = self.render_page(context, plan)
                store_page(key, version, content, page, plan.rendered)
        return {**context, "page": page}

    def render_page(self, context: dict, plan: Plan) -> dict:
        """The body of the page, the CSS of its timeline and whether the plan is started
        (readers: no query, the body says it)."""
        body = get_template("actions/includes/plan_body.html").render(context, self.request)
        return {
            "body": body,
            "css": plan.timeline_css,
            "started": self.can_edit and bool(plan._axes),
        }


class AxesView(PlanMixin, IntegrityErrorMixin, FormView):
    template_name = "actions/axes.html"

    def get_form(self, form_class=None):
        return AxeFormSet(**self.get_form_kwargs(), instance=self.beneficiaire)

    def form_valid(self, form):
        form.save()
        messages.success(self.request, "Axes du plan d'action enregistrés.")
        return redirect("actions:plan", pk=self.beneficiaire.pk)


# Fiches -------------------------------------------------------------------------------------


HISTORY_ROW = "includes/historique_row.html"


def history_rows(fiche: FicheAction, entries: list[audit.Entry], labels: dict) -> list[str]:
    """A fiche's « Historique » (``audit.history_entries``), each row rendered only once:
    cached on what it shows (``audit.entry_content``: the entry, its author's name and the
    names of what it points at, all read again on each request) and on the code that renders
    it, so a new entry, a renamed author or funder renders again only the rows it changed, and
    a row is never stale. The rows last shown are kept together, under the fiche, in one cache
    value with what they showed (``audit.history_content``): one round trip reads them all (a
    hundred keys would cost more than the rows), and when nothing changed, neither a row nor
    its key is computed again."""
    version = code_version()
    content = sha256(repr(audit.history_content(entries, labels)).encode()).hexdigest()
    store_key = f"historique:{version}:{fiche.pk}"
    fragments = fragment_cache()
    shown_content, keys, rows = fragments.get(store_key) or (None, [], [])
    if shown_content == content:
        # Rendered templates are SafeStrings, and stay so through the cache's pickling.
        return rows
    shown = dict(zip(keys, rows, strict=True))
    contents = (repr(audit.entry_content(entry, labels)).encode() for entry in entries)
    keys = [sha256(row_content).hexdigest() for row_content in contents]
    template = get_template(HISTORY_ROW)
    for key, entry in zip(keys, entries, strict=True):
        if key not in shown:
            shown[key] = template.render({"row": audit.history_row(entry, labels)})
    # Only the rows shown now: the value stays as small as the history it holds.
    rows = [shown[key] for key in keys]
    fragments.set(store_key, (content, keys, rows), PAGE_TIMEOUT)
    return rows


class FicheDetailView(DetailView):
    """A fiche, its financing, indicators, progress and history: read in one round trip
    (actions/fiche.py), its body rendered once per content and kept in the fragment cache."""

    template_name = "actions/fiche_detail.html"
    body_template = "actions/includes/fiche_body.html"

    def get_object(self, queryset=None):
        self.lue = Fiche(self.request.user, self.kwargs["pk"])  # 404 outside the perimeter
        return self.lue.fiche

    def get_context_data(self, **kwargs):
        lue, user = self.lue, self.request.user
        audit_url = None
        if policy.may_read_audit_log(user):
            content_type = ContentType.objects.get_for_model(FicheAction)
            audit_url = f"{reverse('portail:audit-log')}?content_type={content_type.pk}"
        key = f"fiche-page:{lue.content(lue.can_edit, audit_url)}"
        fragments = fragment_cache()
        body = fragments.get(key)
        if body is None:
            body = self.render_body(lue, audit_url)
            fragments.set(key, body, PAGE_TIMEOUT)
        return super().get_context_data(
            body=body, can_edit=lue.can_edit, audit_url=audit_url, **kwargs
        )

    def render_body(self, lue: Fiche, audit_url: str | None) -> str:
        fiche = lue.fiche
        entries, labels = lue.history
        context = {
            "object": fiche,
            "can_edit": lue.can_edit,
            "communes": fiche.noms_communes,
            "financements": lue.financements,
            **lue.totals(),
            "indicateurs": lue.indicateurs,
            "points": lue.points,
            "audit_url": audit_url,
            "historique_rows": history_rows(fiche, entries, labels),
        }
        # Rendered templates are SafeStrings, and stay so through the cache's pickling.
        return get_template(self.body_template).render(context)


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
        return super().get_context_data(**{"beneficiaire": self.beneficiaire, **kwargs})

    def form_valid(self, form):
        financements = self.get_financements()
        if financements.is_valid():
            return create_once(self.request, form, lambda: self.save(form, financements))
        context = self.get_context_data(form=form, financements=financements)
        return self.render_to_response(context)

    def save(self, form, financements):
        fiche = save_or_refuse(
            form, lambda: form.save(financements=financements, user=self.request.user)
        )
        if fiche is None:
            context = self.get_context_data(form=form, financements=financements)
            return self.render_to_response(context)
        messages.success(self.request, f"Fiche « {fiche} » enregistrée.")
        return redirect("actions:fiche", pk=fiche.pk)


class FicheCreateView(PlanMixin, FicheFormMixin, CreateView):
    def get_initial(self):
        asked = self.request.GET.get("axe", "")
        axe = self.beneficiaire.axes.filter(pk=asked).first() if asked.isdigit() else None
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
        return create_once(request, mesure_form, lambda: self.save(mesure_form))

    def save(self, mesure_form):
        mesure = mesure_form.save()
        messages.success(self.request, f"Mesure enregistrée pour « {mesure.indicateur} ».")
        return redirect("actions:indicateurs", pk=self.fiche.pk)


class PointCreateView(FicheMixin, CreateView):
    form_class = PointForm
    template_name = "actions/point_form.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "fiche": self.fiche}

    def form_valid(self, form):
        return create_once(self.request, form, lambda: self.create(form))

    def create(self, form):
        form.save(user=self.request.user)
        messages.success(self.request, "Point d'avancement enregistré.")
        return redirect("actions:fiche", pk=self.fiche.pk)


def piece_jointe(request: HttpRequest, pk: int) -> HttpResponse:
    """The attachment of a progress entry, served only to those who see the fiche."""
    point = get_object_or_404(
        PointAvancement.objects.filter(
            fiche__in=FicheAction.objects.for_user(request.user)
        ).exclude(piece_jointe=""),
        pk=pk,
    )
    return files.serve(request, point.piece_jointe, f"point-avancement-{point.pk}.pdf")


# Funders ------------------------------------------------------------------------------------


class FinanceurListView(NationalRequiredMixin, ListView):
    allowed = staticmethod(policy.may_manage_funders)
    template_name = "actions/financeur_list.html"

    def get_queryset(self):
        # Notified or paid: the lines the open-data grants file publishes when a SIRET is set.
        statuts = [LigneFinancement.Statut.NOTIFIE, LigneFinancement.Statut.VERSE]
        notifiees = Q(lignefinancement__statut__in=statuts)
        return Financeur.objects.annotate(
            nb_lignes=Count("lignefinancement"),
            nb_notifiees=Count("lignefinancement", filter=notifiees),
        ).order_by("ordre", "nom")


class FinanceurFormMixin(NationalRequiredMixin, IntegrityErrorMixin):
    allowed = staticmethod(policy.may_manage_funders)
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
    if not policy.may_manage_funders(request.user):
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
