from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import CreateView, DetailView, FormView, ListView, UpdateView
from django_filters.views import FilterView

from communes.models import Beneficiaire
from pvd import audit, files, fragments, policy
from pvd.access import get_poste_for_user
from pvd.cache import DATA_REWRITTEN_KEY
from pvd.french import de_personne
from pvd.integrity import CreateOnceMixin, create_once
from pvd.pagination import LastPageMixin

from . import chiffres, exports, financement, tableaux
from .filters import PosteFilter
from .forms import (
    CofinancementForm,
    DepartForm,
    EtatForm,
    LigneFormSet,
    OccupationForm,
    PosteForm,
    RegleForm,
    ligne_initial,
    save_cofinancement,
)
from .models import CofinancementAnnee, Occupation, Poste, RegleCofinancement

# The modules that render the list's cached filter form (pvd/fragments.py adds the templates).
RENDERED_BY = ("postes.views",)


def selected_year(request) -> int:
    year = request.GET.get("annee", "")
    today = timezone.localdate()
    return int(year) if year.isdigit() and 2020 <= int(year) <= 2040 else today.year


class PosteListView(LastPageMixin, FilterView):
    filterset_class = PosteFilter
    template_name = "postes/poste_list.html"
    paginate_by = 50

    def get_queryset(self):
        self.year = selected_year(self.request)
        self.today = timezone.localdate()
        self.funders = policy.visible_funders(self.request.user)
        postes = Poste.objects.for_user(self.request.user)
        if self.request.GET.get("export") in ("csv", "xlsx"):
            postes = postes.prefetch_related(
                Prefetch("beneficiaires", Beneficiaire.objects.order_by("nom"))
            )
            postes = tableaux.with_facts(postes, self.today, self.year, self.funders)
        else:
            postes = tableaux.triables(
                postes, self.today, self.funders, self.request.GET.get("tri", "")
            )
        return postes.order_by("employeur_nom", "pk")

    def get_filterset_kwargs(self, filterset_class):
        return {**super().get_filterset_kwargs(filterset_class), "user": self.request.user}

    def get(self, request, *args, **kwargs):
        fmt = request.GET.get("export")
        if fmt not in ("csv", "xlsx"):
            # The last bulk write of the reference data (the filter form's key) and the
            # posts' data version (postes/chiffres.py) read in the same round trip to the
            # cache as the reader's perimeter.
            self.prefetched = request.user.prefetch(DATA_REWRITTEN_KEY, chiffres.VERSION_KEY)
            return super().get(request, *args, **kwargs)
        filterset = self.get_filterset(self.get_filterset_class())
        postes = filterset.qs if filterset.is_valid() else self.get_queryset()
        return exports.table_response(
            exports.rows(postes), fmt, f"postes-chefs-de-projet-{self.year}", "Postes"
        )

    def paginate_queryset(self, queryset, page_size):
        # The filtered posts' ids in the list's order, once: the page is a slice of them,
        # and the counts, the totals and the page's rows are prepared queries over them
        # (built and compiled once per process, tableaux.py), kept in the cache on these ids
        # and the posts' data version (postes/chiffres.py).
        self.ids = list(queryset.values_list("pk", flat=True))
        paginator, page, ids, others = super().paginate_queryset(self.ids, page_size)
        self.figures, page.object_list = chiffres.page(
            self.request.user,
            self.ids,
            list(ids),
            self.today,
            self.year,
            self.funders,
            self.prefetched,
        )
        return paginator, page, page.object_list, others

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        etats = dict(Poste.Etat.choices)
        rows = [
            {**ligne, "etat_label": etats.get(ligne["etat"], ligne["etat"])}
            for ligne in context["object_list"]
        ]
        figures = self.figures
        context["year"] = self.year
        context["compteurs"] = figures.compteurs
        context["totaux"] = figures.totaux
        # Figures served while their refresh is queued say when they were computed.
        context["chiffres_au"] = None if figures.a_jour else figures.calcule_le
        context["may_create"] = policy.may_create_posts(self.request.user)
        context["query"] = self.request.GET.urlencode()
        # The rows and the filter form are cached on what they show (pvd/fragments.py).
        context["rows"] = rows
        context["rows_key"] = fragments.content_key((rows, self.year), *RENDERED_BY)
        context["filter_key"] = fragments.filter_key(
            self.request,
            context["filter"].cle_des_options,
            *RENDERED_BY,
            rewritten=self.prefetched.get(DATA_REWRITTEN_KEY),
        )
        context["fragment_timeout"] = fragments.TIMEOUT
        return context


class ManagePostMixin:
    """A post the user sees (else 404) and may manage (else 403)."""

    def get_poste(self) -> Poste:
        return get_poste_for_user(
            self.request,
            self.kwargs["pk"],
            policy.may_manage_post,
            "Seules la préfecture du département et l'ANCT gèrent ce poste.",
        )

    def dispatch(self, request, *args, **kwargs):
        self.poste = self.get_poste()
        return super().dispatch(request, *args, **kwargs)

    def get_success_url(self) -> str:
        return reverse("postes:detail", kwargs={"pk": self.poste.pk})

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "poste": self.poste}


class PosteCreateView(CreateView):
    model = Poste
    form_class = PosteForm

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_create_posts(request.user):
            raise PermissionDenied("Seules les préfectures et l'ANCT créent les postes.")
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = {**super().get_form_kwargs(), "user": self.request.user}
        beneficiaire = self.request.GET.get("beneficiaire", "")
        if beneficiaire.isdigit():
            kwargs["initial"] = {"beneficiaires": [int(beneficiaire)]}
        return kwargs

    def form_valid(self, form):
        return create_once(self.request, form, lambda: self.create(form))

    def create(self, form):
        self.object = form.save(by=self.request.user)
        messages.success(self.request, "Poste enregistré.")
        return redirect("postes:detail", pk=self.object.pk)


class PosteUpdateView(ManagePostMixin, UpdateView):
    model = Poste
    form_class = PosteForm

    def get_object(self, queryset=None):
        return self.poste

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def form_valid(self, form):
        form.save(by=self.request.user)
        messages.success(self.request, "Poste modifié.")
        return redirect(self.get_success_url())


class PosteDetailView(DetailView):
    model = Poste

    def get_queryset(self):
        return Poste.objects.for_user(self.request.user).prefetch_related(
            "beneficiaires__departement", "communes", "occupations", "changements__by"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        poste, user = self.object, self.request.user
        funders = policy.visible_funders(user)
        context.update(
            annees=financement.annees(poste, funders),
            occupation=poste.occupation_actuelle(),
            may_manage=policy.may_manage_post(user, poste),
            all_funders=funders is None,
            historique=audit.history(poste, poste.changements.all(), poste.occupations.all()),
        )
        return context


class EtatView(ManagePostMixin, FormView):
    form_class = EtatForm
    template_name = "postes/poste_step_form.html"
    extra_context = {"titre": "Étape du recrutement"}

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "poste": self.poste}

    def form_valid(self, form):
        changement = form.save(by=self.request.user)
        messages.success(
            self.request, f"État du poste : {changement.get_nouvel_etat_display().lower()}."
        )
        return redirect(self.get_success_url())


class OccupationCreateView(ManagePostMixin, CreateView):
    model = Occupation
    form_class = OccupationForm
    template_name = "postes/poste_step_form.html"
    extra_context = {"titre": "Prise de poste"}

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "poste": self.poste}

    def form_valid(self, form):
        return create_once(self.request, form, lambda: self.create(form))

    def create(self, form):
        occupation = form.save(by=self.request.user, request=self.request)
        if occupation is None:
            return self.form_invalid(form)
        text = (
            f"{occupation.nom_complet} occupe le poste depuis le {occupation.date_debut:%d/%m/%Y}."
        )
        if occupation.role_id:
            text += f" Une invitation au portail a été envoyée à {occupation.email}."
        messages.success(self.request, text)
        return redirect(self.get_success_url())


class DepartView(ManagePostMixin, UpdateView):
    model = Occupation
    form_class = DepartForm
    template_name = "postes/poste_step_form.html"
    extra_context = {"titre": "Départ de la personne en poste"}

    def get_poste(self):
        self.occupation = get_object_or_404(
            Occupation.objects.filter(poste__in=Poste.objects.for_user(self.request.user)),
            pk=self.kwargs["pk"],
            date_fin__isnull=True,
        )
        self.kwargs["pk"] = self.occupation.poste_id
        return super().get_poste()

    def get_object(self, queryset=None):
        return self.occupation

    def form_valid(self, form):
        occupation = form.save(by=self.request.user)
        messages.success(
            self.request,
            f"Départ {de_personne(occupation.nom_complet)} enregistré au "
            f"{occupation.date_fin:%d/%m/%Y} : le poste est vacant.",
        )
        return redirect(self.get_success_url())


class CofinancementView(ManagePostMixin, FormView):
    """A year of co-financing: the application, the loaded cost and each funder's amounts."""

    template_name = "postes/cofinancement_form.html"

    def dispatch(self, request, *args, **kwargs):
        self.annee = None
        if "annee_pk" in kwargs:
            self.annee = get_object_or_404(
                CofinancementAnnee, pk=kwargs["annee_pk"], poste=kwargs["pk"]
            )
        return super().dispatch(request, *args, **kwargs)

    def get_form(self, form_class=None):
        data = self.request.POST if self.request.method == "POST" else None
        form = CofinancementForm(data, instance=self.annee, poste=self.poste)
        self.formset = LigneFormSet(
            data,
            initial=ligne_initial(self.annee),
            poste=self.poste,
            year_form=form,
            prefix="lignes",
        )
        return form

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        if form.is_valid() and self.formset.is_valid():
            return create_once(request, form, lambda: self.save(form))
        return self.render_to_response(self.get_context_data(form=form))

    def save(self, form):
        annee = save_cofinancement(form, self.formset)
        if annee is None:
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(self.request, f"Cofinancement {annee.annee} enregistré.")
        return redirect(self.get_success_url())

    def get_context_data(self, **kwargs):
        historique = audit.history(self.annee, self.annee.lignes.all()) if self.annee else None
        return {
            **super().get_context_data(**kwargs),
            "formset": self.formset,
            "annee": self.annee,
            "historique": historique,
        }


def fiche_de_poste(request, pk: int):
    poste = get_poste_for_user(request, pk)
    if not poste.fiche_de_poste:
        raise Http404("Pas de fiche de poste.")
    return files.serve(request, poste.fiche_de_poste, f"fiche-de-poste-{poste.pk}.pdf")


class RegleListView(ListView):
    model = RegleCofinancement
    template_name = "postes/regle_list.html"

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "may_manage": policy.may_manage_cofinancing_rules(self.request.user),
        }


class RegleMixin:
    model = RegleCofinancement
    form_class = RegleForm

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_manage_cofinancing_rules(request.user):
            raise PermissionDenied("Les règles du programme sont gérées par l'équipe nationale.")
        return super().dispatch(request, *args, **kwargs)

    def get_success_url(self) -> str:
        messages.success(self.request, "Règle de cofinancement enregistrée.")
        return reverse("postes:regles")


class RegleCreateView(RegleMixin, CreateOnceMixin, CreateView):
    pass


class RegleUpdateView(RegleMixin, UpdateView):
    pass
