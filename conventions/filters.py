import django_filters

from communes.models import Departement

from .models import Convention


class ConventionFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label="Bénéficiaire ou titre", method="search", field_name="titre"
    )
    type = django_filters.ChoiceFilter(
        label="Type", choices=Convention.Type.choices, empty_label="Tous"
    )
    statut = django_filters.ChoiceFilter(
        label="Statut", choices=Convention.Statut.choices, empty_label="Tous"
    )
    departement = django_filters.ModelChoiceFilter(
        label="Département",
        field_name="beneficiaire__departement",
        queryset=Departement.objects.none(),
        empty_label="Tous",
    )

    class Meta:
        model = Convention
        fields: list[str] = []

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["departement"].queryset = Departement.objects.for_user(user)

    def search(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(Q(titre__icontains=value) | Q(beneficiaire__nom__icontains=value))
