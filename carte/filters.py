import django_filters
from django.db.models import Exists, OuterRef
from django.utils.http import urlencode

from actions.models import AXE_TRANSVERSAL, AXES_ORT, FicheAction, Financeur, LigneFinancement

# The axes of every plan share their numbers (actions.models.default_axes): the map filters
# fiches of all the plans it shows by that number.
AXES = [(str(i), f"{i}. {nom}") for i, nom in enumerate([*AXES_ORT, AXE_TRANSVERSAL], 1)]


class FicheCarteFilter(django_filters.FilterSet):
    """The fiches on the map, and in the list under it (the same filter for both)."""

    axe = django_filters.ChoiceFilter(
        label="Axe", field_name="axe__numero", choices=AXES, empty_label="Tous"
    )
    maturite = django_filters.ChoiceFilter(
        label="Maturité", choices=FicheAction.Maturite.choices, empty_label="Toutes"
    )
    avancement = django_filters.ChoiceFilter(
        label="Avancement", choices=FicheAction.Avancement.choices, empty_label="Tous"
    )
    financeur = django_filters.ModelChoiceFilter(
        label="Financeur",
        queryset=Financeur.objects.order_by("ordre", "nom"),
        method="with_financeur",
        empty_label="Tous",
    )

    class Meta:
        model = FicheAction
        fields: list[str] = []

    def with_financeur(self, queryset, name, value):
        # Exists, not a join: a join would repeat the fiches it finances.
        lignes = LigneFinancement.objects.filter(fiche=OuterRef("pk"), financeur=value)
        return queryset.filter(Exists(lignes))

    @property
    def querystring(self) -> str:
        """The filters asked for, to pass on to the map's data URL."""
        form = self.form
        if not (form.is_bound and form.is_valid()):
            return ""
        return urlencode(
            {
                name: value.pk if hasattr(value, "pk") else value
                for name, value in form.cleaned_data.items()
                if value not in (None, "")
            }
        )
