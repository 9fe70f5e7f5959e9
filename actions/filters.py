import django_filters
from django import forms
from django.db.models import Exists, OuterRef

from communes.models import Beneficiaire, Departement

from .models import Axe, FicheAction, Financeur, LigneFinancement


class PlanFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Bénéficiaire", field_name="nom", lookup_expr="icontains")
    departement = django_filters.ModelChoiceFilter(
        label="Département", queryset=Departement.objects.none(), empty_label="Tous"
    )

    class Meta:
        model = Beneficiaire
        fields: list[str] = []

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["departement"].queryset = Departement.objects.for_user(user)


class FicheFilter(django_filters.FilterSet):
    axe = django_filters.ModelChoiceFilter(
        label="Axe", queryset=Axe.objects.none(), empty_label="Tous"
    )
    maturite = django_filters.ChoiceFilter(
        label="Maturité", choices=FicheAction.Maturite.choices, empty_label="Toutes"
    )
    avancement = django_filters.ChoiceFilter(
        label="Avancement", choices=FicheAction.Avancement.choices, empty_label="Tous"
    )
    financeur = django_filters.ModelChoiceFilter(
        label="Financeur",
        queryset=Financeur.objects.all(),
        method="with_financeur",
        empty_label="Tous",
    )
    en_retard = django_filters.BooleanFilter(
        label="En retard seulement", method="late", widget=forms.CheckboxInput
    )

    class Meta:
        model = FicheAction
        fields: list[str] = []

    def __init__(self, *args, beneficiaire: Beneficiaire, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["axe"].queryset = beneficiaire.axes.all()

    @property
    def filtered(self) -> bool:
        """A search was asked (the plan then shows the fiches retained, uncached)."""
        form = self.form
        return form.is_bound and form.is_valid() and any(form.cleaned_data.values())

    def with_financeur(self, queryset, name, value):
        # Exists, not a join: a join would repeat fiches and multiply their totals.
        lignes = LigneFinancement.objects.filter(fiche=OuterRef("pk"), financeur=value)
        return queryset.filter(Exists(lignes))

    def late(self, queryset, name, value):
        return queryset.en_retard() if value else queryset
