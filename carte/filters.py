import django_filters
from django.db.models import Exists, OuterRef
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from actions.models import AXE_TRANSVERSAL, AXES_ORT, FicheAction, Financeur, LigneFinancement
from club.filters import FiltreModele, ListesGardees, listes_gardees
from communes.models import Departement, Region
from pvd import policy
from pvd.widgets import OptionsEcrites, SelectRapide

# The axes of every plan share their numbers (actions.models.default_axes): the map filters
# fiches of all the plans it shows by that number.
AXES = [(str(i), f"{i}. {nom}") for i, nom in enumerate([*AXES_ORT, AXE_TRANSVERSAL], 1)]


class FicheCarteFilter(django_filters.FilterSet):
    """The fiches on the map, and in the list under it (the same filter for both)."""

    axe = django_filters.ChoiceFilter(
        label="Axe",
        field_name="axe__numero",
        choices=AXES,
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
    # The funders' options from the list each process keeps (club/filters.py: the same
    # catalogue, in the same order, renewed by a funder's save).
    financeur = FiltreModele(
        label="Financeur",
        queryset=Financeur.objects.order_by("ordre", "nom"),
        method="with_financeur",
        empty_label="Tous",
    )

    class Meta:
        model = FicheAction
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ListesGardees({"financeur": self.filters["financeur"].field})

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


def options_territoire(user, nom: str, tous: str, choisi: str) -> SafeString:
    """The options of the map's département (``nom``: departement) or région select, those
    the user reads: for the readers who see everything, the lists each process keeps
    (club/filters.py), written once; for the others, in one query."""
    en_tete = (("", tous),)
    if policy.sees_everything(user):
        ecrites = listes_gardees().options(nom, en_tete)
    else:
        model = Departement if nom == "departement" else Region
        lues = ((o.pk, str(o)) for o in model.objects.for_user(user))
        ecrites = OptionsEcrites([*en_tete, *lues])
    return ecrites.ecrire({choisi})
