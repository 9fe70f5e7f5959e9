import django_filters
from django import forms
from django.db.models import Q

from .models import Commune, Departement


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
