import time
import uuid

import django_filters
from django import forms
from django.core.cache import cache
from django.db.models import (
    CharField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import JSONObject, RowNumber
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from actions.models import (
    AXE_TRANSVERSAL,
    AXES_ORT,
    FicheAction,
    Financeur,
    LigneFinancement,
    livree_q,
)
from communes.models import Beneficiaire, Departement, MembreBeneficiaire, Region
from pvd import policy
from pvd.cache import DATA_REWRITTEN_KEY
from pvd.db import Parametre
from pvd.models import Role, User
from pvd.widgets import OptionsEcrites, SelectRapide, TexteRapide

from .search import MAX_QUERY, Fiches, chercher, nettoyer, ordre

# Population bands of a beneficiary (its communes together), low bound included.
TRANCHES = {
    "moins-2500": ("Moins de 2 500 habitants", 0, 2500),
    "2500-5000": ("De 2 500 à 5 000 habitants", 2500, 5000),
    "5000-10000": ("De 5 000 à 10 000 habitants", 5000, 10000),
    "10000-plus": ("10 000 habitants ou plus", 10000, None),
}
THEMES = [(nom, nom) for nom in [*AXES_ORT, AXE_TRANSVERSAL]]


def tranche_of(population: int | None) -> str | None:
    if population is None:
        return None
    for code, (_, low, high) in TRANCHES.items():
        if population >= low and (high is None or population < high):
            return code
    return None


def with_population(beneficiaires: QuerySet) -> QuerySet:
    """Each beneficiary's ``population``, its communes together (a subquery: a join would
    multiply it by the rows another annotation joins)."""
    total = (
        MembreBeneficiaire.objects.filter(beneficiaire=OuterRef("pk"))
        .order_by()
        .values("beneficiaire")
        .annotate(total=Sum("commune__population"))
        .values("total")
    )
    return beneficiaires.annotate(population=Subquery(total))


def beneficiaires_de_tranche(code: str) -> QuerySet:
    """The beneficiaries whose communes add up to a population in band ``code``."""
    _, low, high = TRANCHES[code]
    beneficiaires = with_population(Beneficiaire.objects.all()).filter(population__gte=low)
    if high is not None:
        beneficiaires = beneficiaires.filter(population__lt=high)
    return beneficiaires.values("pk")


class ChoixEnCache(django_filters.fields.ModelChoiceIterator):
    """A select's options from the lists this process keeps (``listes_gardees``) when its
    filter set names one (``ListesGardees``), written once (``ecrites``); otherwise in one
    plain query (Django reads them through a server-side cursor: DECLARE, FETCH, CLOSE,
    three round trips for each select)."""

    def en_tete(self) -> tuple:
        field = self.field
        return (
            *((("", field.empty_label),) if field.empty_label is not None else ()),
            *(((field.null_value, field.null_label),) if field.null_label is not None else ()),
        )

    def ecrites(self) -> OptionsEcrites:
        listes = getattr(self.field, "listes", None)
        if listes:
            return listes[0].options(listes[1], self.en_tete())
        return OptionsEcrites(list(self))

    def __iter__(self):
        yield from self.en_tete()
        listes = getattr(self.field, "listes", None)
        if listes:
            yield from listes[0].options(listes[1], ())
        else:
            yield from (self.choice(obj) for obj in self.queryset.all())


# The model selects' options (régions, départements, funders): the same for every reader (the
# querysets are not the reader's perimeter). Each process reads them in one query and keeps
# them, written once (``OptionsEcrites``), under a version held in the cache: a save or a
# deletion of one of these models renews it (club/signals.py), a bulk write says so through
# ``data_rewritten``; a write without signals (``QuerySet.update``) shows within ``TIMEOUT``.
# Callables (django-filter's form of a filter's queryset): a filter set copies its filters
# for each request, and would copy a queryset deeply.
LISTES = {
    "region": lambda request=None: Region.objects.all(),
    "departement": lambda request=None: Departement.objects.all(),
    "financeur": lambda request=None: Financeur.objects.all(),
}
VERSION_KEY = "club:listes:version"
TIMEOUT = 600  # seconds a process keeps its lists at most


class Listes:
    """The lists a process keeps: each list's (value, label) pairs, and its options written
    once for each select's first options (« Tous », « Toutes »)."""

    def __init__(self, version: str, paires: dict[str, list[tuple[str, str]]]):
        self.version, self.paires = version, paires
        self.lues = time.monotonic()
        self.ecrites: dict[tuple, OptionsEcrites] = {}

    def options(self, nom: str, en_tete: tuple) -> OptionsEcrites:
        cle = (nom, en_tete)
        if cle not in self.ecrites:
            self.ecrites[cle] = OptionsEcrites([*en_tete, *self.paires[nom]])
        return self.ecrites[cle]


_gardees: Listes | None = None


def version_des_listes() -> str:
    """The lists' version (and the last bulk write's), one round trip; a missing one is set
    to a new value (with the cache down, a new value each time: the lists are read again)."""
    found = cache.get_many([VERSION_KEY, DATA_REWRITTEN_KEY])
    version = found.get(VERSION_KEY)
    if version is None:
        version = uuid.uuid4().hex
        cache.set(VERSION_KEY, version, None)
    return f"{version}.{found.get(DATA_REWRITTEN_KEY, '')}"


def renew_lists() -> None:
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)


def listes_gardees() -> Listes:
    global _gardees
    version = version_des_listes()
    gardees = _gardees
    if gardees is None or gardees.version != version or time.monotonic() - gardees.lues > TIMEOUT:
        gardees = _gardees = Listes(
            version, lire_listes({nom: queryset() for nom, queryset in LISTES.items()})
        )
    return gardees


def lire_listes(querysets: dict[str, QuerySet]) -> dict[str, list[tuple[str, str]]]:
    """The options of several model selects in one query (``UNION ALL``), each list in its
    queryset's order, each row its model's fields as a JSON object."""
    listes: dict[str, list] = {nom: [] for nom in querysets}
    modeles = {nom: queryset.model for nom, queryset in querysets.items()}
    parties = [partie(nom, queryset) for nom, queryset in querysets.items()]
    lignes = parties[0].union(*parties[1:], all=True).order_by("liste", "rang")
    for liste, _rang, champs in lignes:
        objet = modeles[liste](**champs)
        listes[liste].append((str(objet.pk), str(objet)))
    return listes


def partie(nom: str, queryset: QuerySet) -> QuerySet:
    model = queryset.model
    ordering = queryset.query.order_by or model._meta.ordering
    return (
        queryset.order_by()
        .annotate(
            liste=Value(nom, output_field=CharField()),
            rang=Window(RowNumber(), order_by=[ordre(field) for field in ordering]),
            objet=JSONObject(**{f.attname: F(f.attname) for f in model._meta.concrete_fields}),
        )
        .values_list("liste", "rang", "objet")
    )


class ListesGardees:
    """A filter set's model selects whose options are a list of ``LISTES``, read once per
    request, when the form is first rendered."""

    def __init__(self, champs: dict):
        self.listes: Listes | None = None
        for nom, champ in champs.items():
            champ.listes = (self, nom)

    def options(self, nom: str, en_tete: tuple) -> OptionsEcrites:
        if self.listes is None:
            self.listes = listes_gardees()
        return self.listes.options(nom, en_tete)


class ChampModele(django_filters.fields.ModelChoiceField):
    iterator = ChoixEnCache


class FiltreModele(django_filters.ModelChoiceFilter):
    """A model's choice, its options in one query and written in Python (``SelectRapide``)."""

    field_class = ChampModele

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", SelectRapide)
        super().__init__(*args, **kwargs)


class FormulaireClub(forms.Form):
    """The Club's filters as the DSFR writes them (club/includes/filtres.html): each widget
    carries its class (Django adds ``aria-invalid`` and ``aria-describedby``, pointing to
    the help text and the error), and ``champs_html`` writes each field's group around its
    widget (a template loop over nine fields costs more than the search)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            choix = isinstance(field.widget, forms.Select)
            field.widget.attrs["class"] = "fr-select" if choix else "fr-input"
            field.groupe = "fr-select-group" if choix else "fr-input-group"

    CHAMP = (
        '<div class="fr-col-12 fr-col-md-6 fr-col-lg-3"><div class="{}">'
        '<label class="fr-label" for="{}">{}{}</label>{}{}</div></div>'
    )
    AIDE = '<span class="fr-hint-text" id="{}_helptext">{}</span>'
    ERREURS = '<div id="{}_error">{}</div>'
    ERREUR = '<p class="fr-error-text">{}</p>'

    def champs_html(self) -> SafeString:
        """Each field in its DSFR group: its label, help text and errors escaped
        (``format_html``), its widget as Django renders it."""
        return format_html_join("", "{}", ((self.champ_html(champ),) for champ in self))

    def champ_html(self, champ) -> SafeString:
        groupe, errors, auto_id = champ.field.groupe, champ.errors, champ.auto_id
        return format_html(
            self.CHAMP,
            f"{groupe} {groupe}--error" if errors else groupe,
            champ.id_for_label,
            champ.label,
            format_html(self.AIDE, auto_id, champ.help_text) if champ.help_text else "",
            champ.as_widget(),
            format_html(
                self.ERREURS, auto_id, format_html_join("", self.ERREUR, ((e,) for e in errors))
            )
            if errors
            else "",
        )


class ClubFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Rechercher dans les plans d’action",
        method="search",
        max_length=MAX_QUERY,
        help_text="Par exemple : rénovation façades, « halle de marché », friche -industrielle",
        widget=TexteRapide,
    )
    region = FiltreModele(
        label="Région",
        queryset=LISTES["region"],
        field_name="beneficiaire__departement__region",
        empty_label="Toutes",
        widget=SelectRapide,
    )
    departement = FiltreModele(
        label="Département",
        queryset=LISTES["departement"],
        field_name="beneficiaire__departement",
        empty_label="Tous",
        widget=SelectRapide,
    )
    axe = django_filters.ChoiceFilter(
        label="Axe",
        choices=THEMES,
        field_name="axe__nom",
        empty_label="Tous",
        widget=SelectRapide,
    )
    maturite = django_filters.ChoiceFilter(
        label="Maturité",
        choices=FicheAction.Maturite.choices,
        empty_label="Toutes",
        widget=SelectRapide,
    )
    avancement = django_filters.ChoiceFilter(
        label="Avancement",
        choices=FicheAction.Avancement.choices,
        empty_label="Tous",
        widget=SelectRapide,
    )
    financeur = FiltreModele(
        label="Financeur",
        queryset=LISTES["financeur"],
        method="with_financeur",
        empty_label="Tous",
        widget=SelectRapide,
    )
    population = django_filters.ChoiceFilter(
        label="Population",
        choices=[(code, label) for code, (label, *_) in TRANCHES.items()],
        method="in_tranche",
        empty_label="Toutes",
        widget=SelectRapide,
    )
    livree = django_filters.ChoiceFilter(
        label="Livraison",
        choices=[("oui", "Livrées"), ("non", "Pas encore livrées")],
        method="delivered",
        empty_label="Toutes",
        widget=SelectRapide,
    )

    class Meta:
        model = FicheAction
        fields: list[str] = []
        form = FormulaireClub

    LISTES = ("region", "departement", "financeur")  # the selects of ``listes_gardees``

    def get_form_class(self):
        """The form's class, built once per process (django-filter builds it, and a field
        for each filter, at each request): its fields are the same for every reader, and
        each form copies them."""
        cls = type(self)
        form_class = cls.__dict__.get("classe_du_formulaire")
        if form_class is None:
            form_class = cls.classe_du_formulaire = super().get_form_class()
        return form_class

    @property
    def form(self):
        if not hasattr(self, "_form"):
            form = super().form
            ListesGardees({nom: form.fields[nom] for nom in self.LISTES})
        return self._form

    def search(self, queryset, name, value):
        """The words are searched last, over the fiches the facets keep: ``resultats`` (all of
        them, the export) or ``search.Candidats`` (the page)."""
        return queryset

    @property
    def mots(self) -> str:
        """The search typed, cleaned (empty when a filter is invalid)."""
        return nettoyer(self.form.cleaned_data.get("q", "")) if self.is_valid() else ""

    def resultats(self):
        """Every fiche found, best first (or none when a filter is invalid)."""
        return chercher(self.qs, self.mots) if self.is_valid() else self.queryset.none()

    # The facets whose value changes the SQL (a band's bounds, delivered or not): their value
    # is part of the prepared query's key; the others' values fill its slots.
    FORMES = frozenset({"population", "livree"})

    def a_chercher(self, lecteur) -> "Fiches | QuerySet":
        """What the search page reads (``search.Candidats``): ``club_for(lecteur)`` and the
        facets chosen, prepared (``search.Fiches``): the same SQL for every reader of the same
        perimeter (``club_for`` reads the perimeter only; ``policy.perimeter_key`` differs
        whenever it does) choosing the same facets, each facet's value a slot. None when a
        filter is invalid (the filter set's rule)."""
        if self.is_bound and not self.is_valid():
            return FicheAction.objects.none()
        choisies = self.form.cleaned_data.items() if self.is_bound else ()
        facettes = [
            (nom, valeur)
            for nom, valeur in choisies
            if nom != "q" and valeur not in django_filters.constants.EMPTY_VALUES
        ]
        forme = tuple((nom, valeur if nom in self.FORMES else None) for nom, valeur in facettes)
        valeurs = {
            nom: getattr(valeur, "pk", valeur) for nom, valeur in facettes if nom not in self.FORMES
        }

        def construire() -> QuerySet:
            fiches = FicheAction.objects.club_for(lecteur).order_by("-pk")
            for nom, valeur in forme:
                fiches = self.filters[nom].filter(
                    fiches, Parametre(nom) if valeur is None else valeur
                )
            return fiches

        cle = (policy.perimeter_key(lecteur), forme)
        return Fiches(cle=cle, valeurs=valeurs, construire=construire)

    def with_financeur(self, queryset, name, value):
        lignes = LigneFinancement.objects.filter(fiche=OuterRef("pk"), financeur=value)
        return queryset.filter(Exists(lignes))

    def in_tranche(self, queryset, name, value):
        return queryset.filter(beneficiaire__in=beneficiaires_de_tranche(value))

    def delivered(self, queryset, name, value):
        return queryset.filter(livree_q()) if value == "oui" else queryset.exclude(livree_q())


def annuaire(users: QuerySet | None = None) -> QuerySet:
    """The people listed in the Club's annuaire: active, and who said yes, or said nothing
    and are chefs de projet (listed by default; everyone else only when they opt in)."""
    users = User.objects.all() if users is None else users
    chefs = Role.objects.filter(user=OuterRef("pk"), kind=Role.Kind.CHEF_PROJET)
    return users.filter(is_active=True).filter(
        Q(annuaire_club=True) | Q(annuaire_club__isnull=True, pk__in=chefs.values("user"))
    )


class AnnuaireFilter(django_filters.FilterSet):
    """Each filter keeps the people one of whose roles matches (a subquery: no join, so each
    person is listed once)."""

    departement = FiltreModele(
        label="Département",
        queryset=Departement.objects.all(),
        method="with_roles",
        empty_label="Tous",
        widget=SelectRapide,
    )
    theme = django_filters.ChoiceFilter(
        label="Thème de leurs fiches action",
        choices=THEMES,
        method="with_roles",
        empty_label="Tous",
        widget=SelectRapide,
    )
    population = django_filters.ChoiceFilter(
        label="Population",
        choices=[(code, label) for code, (label, *_) in TRANCHES.items()],
        method="with_roles",
        empty_label="Toutes",
        widget=SelectRapide,
    )

    class Meta:
        model = User
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ListesGardees({"departement": self.filters["departement"].field})

    def with_roles(self, queryset, name, value):
        if name == "departement":
            condition = (
                Q(beneficiaires__departement=value)
                | Q(communes__departement=value)
                | Q(departements=value)
            )
        elif name == "theme":
            condition = Q(beneficiaires__fiches__axe__nom=value)
        else:
            condition = Q(beneficiaires__in=beneficiaires_de_tranche(value))
        return queryset.filter(pk__in=Role.objects.filter(condition).values("user"))
