from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.generic import DetailView, FormView, ListView, UpdateView
from django_filters.views import FilterView

from actions.models import FicheAction, LigneFinancement, livree_q
from communes.models import Beneficiaire
from pvd import policy
from pvd.db import ArraySubquery, DansLaListe, Preparee, Valeur
from pvd.french import euros
from pvd.models import Role
from pvd.pagination import LastPageMixin
from pvd.spreadsheets import csv_response, xlsx_response

from . import search
from .filters import (
    AnnuaireFilter,
    ClubFilter,
    annuaire,
    beneficiaires_de_tranche,
    tranche_of,
    with_population,
)
from .forms import ContactForm, ProfilClubForm

SIMILAIRES = 10


class ClubMixin:
    """Every Club page: for anyone with a role in the programme (403 otherwise)."""

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_read_club(request.user):
            raise PermissionDenied("Le Club est réservé aux membres du programme.")
        return super().dispatch(request, *args, **kwargs)


def lien(nom: str) -> Callable[[int], str]:
    """The URL named ``nom`` (one ``<int:pk>`` argument) for any pk, reversed once: the pk
    written where a reversed placeholder stood, as ``reverse`` writes an int (a page of
    results writes twenty links or more)."""
    marque = 987654321987654321
    debut, _, fin = reverse(nom, kwargs={"pk": marque}).rpartition(str(marque))
    return lambda pk: f"{debut}{int(pk):d}{fin}"


class Chef:
    """A chef de projet of the annuaire, as a result names them, with the link to write to
    them about ``fiche`` (``contact``: ``lien("club:contact")``)."""

    __slots__ = ("pk", "nom", "contact_url")

    def __init__(self, ligne: str, fiche: int, contact: Callable[[int], str]):
        pk, _, nom = ligne.partition(" ")
        self.pk, self.nom = int(pk), " ".join(nom.split())
        self.contact_url = f"{contact(self.pk)}?fiche={fiche:d}"


def avec_noms(fiches):
    """Each fiche's funders' names (``noms_financeurs``: the lines' amounts stay within the
    perimeter) and its town's chefs de projet listed in the annuaire (``chefs``: « id name »
    lines), as two arrays in the fiche's row: no query of their own."""
    financeurs = (
        LigneFinancement.objects.filter(fiche=OuterRef("pk"))
        .order_by("financeur__nom")
        .values(nom=F("financeur__nom"))
    )
    chefs = (
        Role.objects.filter(
            kind=Role.Kind.CHEF_PROJET,
            user__in=annuaire(),
            beneficiaires=OuterRef("beneficiaire_id"),
        )
        .order_by("user__last_name", "user__first_name", "user_id")
        .values(
            chef=Concat(
                Cast("user_id", CharField()),
                Value(" "),
                "user__first_name",
                Value(" "),
                "user__last_name",
                output_field=CharField(),
            )
        )
    )
    return fiches.annotate(
        financeurs_lignes=ArraySubquery(financeurs), chefs_lignes=ArraySubquery(chefs)
    )


def club_fiches(user):
    return avec_noms(
        FicheAction.objects.club_for(user)
        .select_related("beneficiaire__departement", "axe")
        .order_by("beneficiaire__nom", "axe__numero", "reference")
    )


def financeurs(fiche) -> list[str]:
    return sorted(set(fiche.financeurs_lignes))


def chefs(fiche, contact: Callable[[int], str] | None = None) -> list[Chef]:
    """The chefs de projet of a fiche's town, each with the link to write to them about it."""
    contact = contact or lien("club:contact")
    return [Chef(ligne, fiche.pk, contact) for ligne in fiche.chefs_lignes]


def page_de_resultats(surligner: bool):
    """What the search page shows of its fiches, in one query (``PAGE``): the fiches whose
    ids the ``ids`` slot holds (``Candidats`` read them through ``club_for``), their town,
    axis, funders and chefs de projet, and with ``surligner`` their extracts (the ``q``
    slot)."""
    fiches = avec_noms(FicheAction.objects.filter(DansLaListe(F("pk"), Valeur("ids"))))
    if surligner:
        fiches = fiches.annotate(**search.surlignages(Valeur("q")))
    colonnes = Resultat.COLONNES + (Resultat.SURLIGNAGES if surligner else ())
    return fiches.order_by().values_list(*colonnes)


PAGE = Preparee(page_de_resultats)


class Resultat:
    """A result of the search page: what it shows of a fiche, its title and extract
    highlighted (escaped), its links written (``liens``: the page's ``Liens``), and its
    markup (``html``, ``ecrire``): twenty results written by the template's tags cost more
    than the search itself."""

    COLONNES = (
        "pk",
        "titre",
        "description",
        "maturite",
        "avancement",
        "cout_total",
        "partage_club",
        "beneficiaire__nom",
        "beneficiaire__departement__nom",
        "beneficiaire__departement_id",
        "axe__nom",
        "financeurs_lignes",
        "chefs_lignes",
    )
    SURLIGNAGES = ("titre_surligne", "extrait_surligne")
    MATURITES = dict(FicheAction.Maturite.choices)
    AVANCEMENTS = dict(FicheAction.Avancement.choices)
    HTML = (
        '<li class="fr-mb-3w"><h2 class="fr-h6 fr-mb-1v"><a href="{}">{}</a></h2>'
        '<p class="fr-text--sm fr-mb-1v"><strong>{}</strong> ({}) · {} · {} · {}{}{}</p>'
        "{}{}{}</li>"
    )
    COUT = " · {}"
    BADGE = ' · <span class="fr-badge fr-badge--sm">{}</span>'
    EXTRAIT = '<p class="fr-text--sm fr-mb-1v">{}</p>'
    FINANCEURS = '<p class="fr-text--xs fr-mb-1v">Financeurs : {}</p>'
    CHEFS = '<ul class="fr-text--sm">{}</ul>'
    CHEF = (
        '<li>{}, chef de projet — <a href="{}">Contacter<span class="fr-sr-only"> {}</span></a>'
        "</li>"
    )

    def __init__(self, ligne, liens: "Liens"):
        (
            self.pk,
            self.titre,
            self.description,
            maturite,
            avancement,
            self.cout_total,
            self.partage_club,
            self.ville,
            departement,
            code,
            self.axe,
            self.financeurs_lignes,
            self.chefs_lignes,
            *surlignages,
        ) = ligne
        self.titre_surligne, self.extrait_surligne = surlignages or ("", "")
        self.departement = f"{departement} ({code})"
        self.maturite = self.MATURITES.get(maturite, maturite)
        self.avancement = self.AVANCEMENTS.get(avancement, avancement)
        self.url = liens.fiche(self.pk)
        self.titre_html = search.titre(self)
        self.extrait_html = search.extrait(self)
        self.noms_financeurs = financeurs(self)
        self.chefs = chefs(self, liens.contact)
        self.html = self.ecrire()

    def ecrire(self) -> SafeString:
        """The result's markup, in one ``format_html`` (every value escaped; the highlighted
        title and extract are escaped already, ``search.surligner``)."""
        chefs = format_html_join(
            "", self.CHEF, ((c.nom or "Chef de projet", c.contact_url, c.nom) for c in self.chefs)
        )
        return format_html(
            self.HTML,
            self.url,
            self.titre_html,
            self.ville,
            self.departement,
            self.axe,
            self.maturite,
            self.avancement,
            format_html(self.COUT, euros(self.cout_total)) if self.cout_total else "",
            "" if self.partage_club else format_html(self.BADGE, "non partagée avec le Club"),
            format_html(self.EXTRAIT, self.extrait_html) if self.extrait_html else "",
            format_html(self.FINANCEURS, ", ".join(self.noms_financeurs))
            if self.noms_financeurs
            else "",
            format_html(self.CHEFS, chefs) if chefs else "",
        )


class Liens:
    """The links a page of results writes, each reversed once."""

    def __init__(self):
        self.fiche, self.contact = lien("club:fiche"), lien("club:contact")


class RechercheView(ClubMixin, LastPageMixin, FilterView):
    filterset_class = ClubFilter
    template_name = "club/recherche.html"
    paginate_by = 20

    def get_queryset(self):
        """The filter set's queryset, never read: the page reads the fiches through
        ``ClubFilter.a_chercher`` (``club_for`` and the facets, prepared)."""
        return FicheAction.objects.none()

    def get(self, request, *args, **kwargs):
        self.filterset = self.get_filterset(self.get_filterset_class())
        self.object_list = self.filterset.a_chercher(request.user)
        context = self.get_context_data(filter=self.filterset, object_list=self.object_list)
        return self.render_to_response(context)

    def paginate_queryset(self, queryset, page_size):
        """Rank and count at most ``search.PLAFOND`` fiches on their ids alone, in one query
        (``search.Candidats``), then load the page's fiches with their town, axis, funders,
        chefs de projet and highlighted extracts: a fixed number of queries, and no join nor
        headline for the rows the page skips."""
        q = self.filterset.mots
        page = self.request.GET.get(self.page_kwarg, "")
        debut = (int(page) - 1) * page_size if page.isdigit() and 0 < int(page) < 10**6 else 0
        self.candidats = search.Candidats(queryset, q, debut, page_size)
        paginator, page, page_ids, has_other = super().paginate_queryset(self.candidats, page_size)
        page_ids = list(page_ids)
        q = self.candidats.q_effectif
        surligner = bool(q) and search.full_text()
        lignes = PAGE.lignes(surligner, ids=page_ids, q=q) if page_ids else []
        liens = Liens()
        by_pk = {ligne[0]: Resultat(ligne, liens) for ligne in lignes}
        return paginator, page, [by_pk[pk] for pk in page_ids if pk in by_pk], has_other

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["query_string"] = self.request.GET.urlencode()
        context["plafond"] = search.PLAFOND
        context["plafond_atteint"] = self.candidats.depasse
        context["recherche"] = bool(self.filterset.mots)
        context["mots_proches"] = self.candidats.q_effectif != self.candidats.q
        return context


class ExportView(ClubMixin, FilterView):
    """A search's results as CSV or XLSX, the same visibility rule (``club_for``)."""

    filterset_class = ClubFilter
    HEADER = [
        "Bénéficiaire",
        "Département",
        "Axe",
        "Référence",
        "Titre",
        "Description",
        "Maturité",
        "Avancement",
        "Début prévu",
        "Fin prévue",
        "Coût total (€ HT)",
        "Financeurs",
    ]

    def get_queryset(self):
        return club_fiches(self.request.user)

    def get(self, request, *args, **kwargs):
        fiches = self.get_filterset(self.get_filterset_class()).resultats()
        rows = (
            [
                fiche.beneficiaire.nom,
                str(fiche.beneficiaire.departement),
                fiche.axe.nom,
                fiche.reference,
                fiche.titre,
                fiche.description,
                fiche.get_maturite_display(),
                fiche.get_avancement_display(),
                fiche.date_debut_prevue,
                fiche.date_fin_prevue,
                fiche.cout_total,
                ", ".join(financeurs(fiche)),
            ]
            for fiche in fiches.iterator(chunk_size=1000)
        )
        if request.GET.get("format") == "xlsx":
            return xlsx_response(self.HEADER, rows, "club-pvd-recherche", "Club PVD")
        return csv_response(self.HEADER, rows, "club-pvd-recherche")


class FicheView(ClubMixin, DetailView):
    """What the Club reads of a fiche; a fiche not shared, outside the perimeter, is a 404."""

    template_name = "club/fiche.html"
    context_object_name = "fiche"

    def get_queryset(self):
        return club_fiches(self.request.user)

    def get_context_data(self, **kwargs):
        fiche = self.object
        return super().get_context_data(
            noms_financeurs=financeurs(fiche),
            chefs=chefs(fiche),
            may_share=policy.may_share_fiche(self.request.user, fiche.beneficiaire),
            in_perimeter=fiche.beneficiaire.fiches.for_user(self.request.user)
            .filter(pk=fiche.pk)
            .exists(),
            **kwargs,
        )


class PartageView(ClubMixin, UpdateView):
    """Share a fiche with the Club or not: its chefs de projet and its préfecture."""

    fields = ["partage_club"]
    http_method_names = ["post"]

    def get_queryset(self):
        return FicheAction.objects.for_user(self.request.user).select_related("beneficiaire")

    def form_valid(self, form):
        if not policy.may_share_fiche(self.request.user, self.object.beneficiaire):
            raise PermissionDenied
        self.object.partage_club = form.cleaned_data["partage_club"]
        self.object.save(update_fields=["partage_club", "updated_at"])
        return redirect("club:fiche", pk=self.object.pk)

    def form_invalid(self, form):
        return redirect("club:fiche", pk=self.object.pk)


class ContactView(ClubMixin, FormView):
    """« Contacter »: write to a chef de projet of the annuaire; their address stays hidden."""

    form_class = ContactForm
    template_name = "club/contact.html"

    @cached_property
    def destinataire(self):
        users = annuaire().prefetch_related("roles__beneficiaires")
        return get_object_or_404(users, pk=self.kwargs["pk"])

    @cached_property
    def fiche(self):
        pk = self.request.GET.get("fiche", "")
        if not pk.isdigit() or len(pk) > 18:
            return None
        return FicheAction.objects.club_for(self.request.user).filter(pk=pk).first()

    def get_form_kwargs(self):
        return {
            **super().get_form_kwargs(),
            "expediteur": self.request.user,
            "destinataire": self.destinataire,
            "fiche": self.fiche,
        }

    def get_context_data(self, **kwargs):
        return super().get_context_data(destinataire=self.destinataire, fiche=self.fiche, **kwargs)

    def form_valid(self, form):
        try:
            form.save()
        except ValidationError as error:
            form.add_error(None, error)
            return self.form_invalid(form)
        messages.success(
            self.request,
            f"Votre message a été envoyé à {self.destinataire.get_full_name()}.",
        )
        return redirect(reverse("club:recherche"))


class AnnuaireView(ClubMixin, LastPageMixin, FilterView):
    filterset_class = AnnuaireFilter
    template_name = "club/annuaire.html"
    paginate_by = 50

    def get_queryset(self):
        beneficiaires = Beneficiaire.objects.select_related("departement")
        roles = Role.objects.prefetch_related(
            Prefetch("beneficiaires", queryset=beneficiaires), "communes", "departements"
        ).select_related("epci", "region")
        return (
            annuaire()
            .order_by("last_name", "first_name", "pk")
            .prefetch_related(Prefetch("roles", queryset=roles, to_attr="postes"))
        )


class SimilairesView(ClubMixin, ListView):
    """Towns like mine: the PVD towns closest to a beneficiary (population band, shared
    themes of fiches), with what they delivered (shared with the Club)."""

    template_name = "club/similaires.html"
    context_object_name = "villes"

    @cached_property
    def beneficiaire(self):
        beneficiaires = with_population(Beneficiaire.objects.for_user(self.request.user))
        return get_object_or_404(beneficiaires, pk=self.kwargs["pk"])

    def get_queryset(self):
        moi = self.beneficiaire
        user = self.request.user
        themes = FicheAction.objects.filter(beneficiaire=moi).values("axe__nom")
        shared = Q(fiches__in=FicheAction.objects.club_for(user))
        tranche = tranche_of(moi.population)
        candidats = (
            with_population(Beneficiaire.objects.actifs().exclude(pk=moi.pk))
            .annotate(
                themes_communs=Count(
                    "fiches__axe__nom",
                    filter=shared & Q(fiches__axe__nom__in=themes),
                    distinct=True,
                ),
                livrees=Count("fiches", filter=shared & livree_q("fiches__"), distinct=True),
            )
            .select_related("departement")
        )
        meme_tranche = (
            Case(
                When(pk__in=beneficiaires_de_tranche(tranche), then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
            if tranche
            else Value(0, output_field=IntegerField())
        )
        candidats = candidats.annotate(meme_tranche=meme_tranche)
        livrees = FicheAction.objects.club_for(user).filter(livree_q()).order_by("titre")
        return candidats.order_by(
            "-meme_tranche", "-themes_communs", "-livrees", "nom"
        ).prefetch_related(Prefetch("fiches", queryset=livrees, to_attr="fiches_livrees"))[
            :SIMILAIRES
        ]

    def get_context_data(self, **kwargs):
        return super().get_context_data(beneficiaire=self.beneficiaire, **kwargs)


class ProfilView(ClubMixin, UpdateView):
    form_class = ProfilClubForm
    template_name = "club/profil.html"

    def get_object(self, queryset=None):
        return self.request.user

    def get_form_kwargs(self):
        listed = annuaire().filter(pk=self.request.user.pk).exists()
        return {**super().get_form_kwargs(), "listed": listed}

    def form_valid(self, form):
        form.save()
        messages.success(self.request, "Votre choix est enregistré.")
        return redirect("club:profil")
