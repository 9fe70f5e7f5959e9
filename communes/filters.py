import django_filters
from django import forms
from django.db.models import Q
from django.http import QueryDict

from pvd import policy
from pvd.filtres import FiltreDuPerimetre

from .models import (
    EPCI,
    SEUIL_POPULATION,
    Beneficiaire,
    Commune,
    Departement,
    MembreBeneficiaire,
    Region,
    normalize,
)


class CommuneFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Nom ou code INSEE", method="search")
    departement = django_filters.ModelChoiceFilter(
        label="Département", queryset=Departement.objects.none(), empty_label="Tous"
    )
    epci = django_filters.CharFilter(label="EPCI (nom ou SIREN)", method="in_epci")
    population_min = django_filters.NumberFilter(
        label="Population minimale", field_name="population", lookup_expr="gte", min_value=0
    )
    population_max = django_filters.NumberFilter(
        label="Population maximale", field_name="population", lookup_expr="lte", min_value=0
    )
    tri = django_filters.OrderingFilter(
        label="Trier par",
        fields=(("nom", "nom"), ("population", "population"), ("code", "code")),
        field_labels={
            "nom": "Nom",
            "-nom": "Nom (décroissant)",
            "population": "Population croissante",
            "-population": "Population décroissante",
            "code": "Code INSEE",
            "-code": "Code INSEE (décroissant)",
        },
        empty_label="Nom",
    )

    class Meta:
        model = Commune
        fields: list[str] = []

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["departement"].queryset = Departement.objects.for_user(user)
        for name in ("population_min", "population_max"):
            self.filters[name].field.widget = forms.NumberInput(attrs={"min": 0})

    def search(self, queryset, name, value):
        return queryset.search(value)

    def in_epci(self, queryset, name, value):
        value = value.strip()
        if value.isdigit():
            return queryset.filter(epci_id=value)
        return queryset.filter(Q(epci__nom__icontains=value))


class BeneficiaireFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Nom ou commune", method="search")
    region = FiltreDuPerimetre(
        label="Région", field_name="departement__region", empty_label="Toutes"
    )
    departement = FiltreDuPerimetre(label="Département", empty_label="Tous")
    epci = django_filters.CharFilter(label="EPCI (nom ou SIREN)", method="in_epci")
    statut = django_filters.ChoiceFilter(
        label="Statut", choices=Beneficiaire.Statut.choices, empty_label="Tous"
    )
    population_min = django_filters.NumberFilter(
        label="Population minimale", field_name="population_totale", lookup_expr="gte"
    )
    population_max = django_filters.NumberFilter(
        label="Population maximale", field_name="population_totale", lookup_expr="lte"
    )
    tri = django_filters.OrderingFilter(
        label="Trier par",
        fields=(
            ("nom", "nom"),
            ("population_totale", "population"),
            ("departement", "departement"),
        ),
        field_labels={
            "nom": "Nom",
            "-nom": "Nom (décroissant)",
            "population": "Population croissante",
            "-population": "Population décroissante",
            "departement": "Département",
            "-departement": "Département (décroissant)",
        },
        empty_label="Nom",
    )

    class Meta:
        model = Beneficiaire
        fields: list[str] = []

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        cle = policy.perimeter_key(user)
        self.filters["region"].extra.update(
            lire=lambda: Region.objects.for_user(user), cle_des_choix=cle
        )
        self.filters["departement"].extra.update(
            lire=lambda: Departement.objects.for_user(user), cle_des_choix=cle
        )
        self.cle_des_options = (cle,)

    # What the form's options depend on beyond the code (its labels, the statuses, the sort
    # orders): the reader's perimeter (régions, départements). The key of the cached form
    # (pvd/fragments.py ``filter_key``) is made of it without building the form; a filter
    # whose options read anything else must add it here.
    cle_des_options: tuple

    def search(self, queryset, name, value):
        matching = MembreBeneficiaire.objects.filter(
            commune__nom_recherche__contains=normalize(value)
        ).values("beneficiaire_id")
        return queryset.filter(Q(nom__icontains=value) | Q(pk__in=matching))

    def in_epci(self, queryset, name, value):
        value = value.strip()
        if value.isdigit():
            return queryset.filter(epci_id=value)
        return queryset.filter(epci__nom__icontains=value)


class SelectionFilter(django_filters.FilterSet):
    """Candidate communes of one département, for the préfecture's selection."""

    q = django_filters.CharFilter(label="Nom ou code INSEE", method="search")
    epci = django_filters.ModelChoiceFilter(
        label="EPCI", queryset=EPCI.objects.none(), empty_label="Tous"
    )
    population_min = django_filters.NumberFilter(
        label="Population minimale", field_name="population", lookup_expr="gte", min_value=0
    )
    population_max = django_filters.NumberFilter(
        label="Population maximale",
        field_name="population",
        lookup_expr="lte",
        min_value=0,
        help_text="Par défaut, les communes de moins de 20 000 habitants.",
    )
    en_pvd = django_filters.ChoiceFilter(
        label="Dans le programme",
        choices=[("oui", "Déjà dans PVD"), ("non", "Pas encore dans PVD")],
        empty_label="Toutes",
        method="filter_en_pvd",
    )
    tri = django_filters.OrderingFilter(
        label="Trier par",
        fields=(("nom", "nom"), ("population", "population")),
        field_labels={
            "nom": "Nom",
            "-nom": "Nom (décroissant)",
            "population": "Population croissante",
            "-population": "Population décroissante",
        },
        empty_label="Population décroissante",
    )

    class Meta:
        model = Commune
        fields: list[str] = []

    def __init__(self, data=None, *args, departement=None, **kwargs):
        if data is None or "population_max" not in data:
            data = data.copy() if data is not None else QueryDict(mutable=True)
            data["population_max"] = str(SEUIL_POPULATION - 1)
        super().__init__(data, *args, **kwargs)
        self.filters["epci"].queryset = EPCI.objects.filter(
            communes__departement=departement
        ).distinct()

    def search(self, queryset, name, value):
        return queryset.search(value)

    def filter_en_pvd(self, queryset, name, value):
        return queryset.filter(beneficiaire_actif__isnull=(value == "non"))

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("tri"):
            queryset = queryset.order_by("-population", "nom")
        return queryset
