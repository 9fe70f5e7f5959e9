import django_filters

from communes.models import Beneficiaire, MembreBeneficiaire
from conventions.models import Convention


class CommunePvdFilter(django_filters.FilterSet):
    insee_dep = django_filters.CharFilter(field_name="commune__departement_id", max_length=3)
    insee_reg = django_filters.CharFilter(
        field_name="commune__departement__region_id", max_length=2
    )
    siren_epci = django_filters.CharFilter(field_name="commune__epci_id", max_length=9)
    statut = django_filters.ChoiceFilter(
        field_name="beneficiaire__statut", choices=Beneficiaire.Statut.choices
    )

    class Meta:
        model = MembreBeneficiaire
        fields = ["insee_dep", "insee_reg", "siren_epci", "statut"]


class ConventionCadreFilter(django_filters.FilterSet):
    insee_dep = django_filters.CharFilter(field_name="beneficiaire__departement_id", max_length=3)

    class Meta:
        model = Convention
        fields = ["insee_dep"]
