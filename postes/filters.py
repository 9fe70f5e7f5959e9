import django_filters
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from communes.models import Beneficiaire, Departement, Region
from pvd import policy
from pvd.filtres import FiltreDuPerimetre

from .models import Poste


class PosteFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Bénéficiaire, employeur ou personne", method="search")
    region = FiltreDuPerimetre(label="Région", empty_label="Toutes", method="in_region")
    departement = FiltreDuPerimetre(
        label="Département", empty_label="Tous", method="in_departement"
    )
    etat = django_filters.ChoiceFilter(
        label="État du recrutement", choices=Poste.Etat.choices, empty_label="Tous"
    )
    # Chooses the year of the amounts shown (read by the view), filters nothing.
    annee = django_filters.ChoiceFilter(
        label="Année des montants", choices=[], empty_label="Année en cours", method="keep"
    )
    tri = django_filters.OrderingFilter(
        label="Trier par",
        fields=(
            ("employeur_nom", "employeur"),
            ("vacant_depuis", "vacant_depuis"),
            ("fin_contrat", "fin_contrat"),
            ("derniere_annee_financee", "fin_financement"),
        ),
        field_labels={
            "employeur": "Employeur",
            "-employeur": "Employeur (décroissant)",
            "vacant_depuis": "Vacant depuis le plus longtemps",
            "-vacant_depuis": "Vacant depuis le moins longtemps",
            "fin_contrat": "Fin de contrat la plus proche",
            "-fin_contrat": "Fin de contrat la plus lointaine",
            "fin_financement": "Fin de financement la plus proche",
            "-fin_financement": "Fin de financement la plus lointaine",
        },
        empty_label="Employeur",
    )

    class Meta:
        model = Poste
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
        years = range(2020, timezone.localdate().year + 2)
        self.filters["annee"].extra["choices"] = [(str(y), str(y)) for y in reversed(years)]
        self.cle_des_options = (cle, years.stop)

    # What the form's options depend on beyond the code (its labels, the states, the sort
    # orders): the reader's perimeter (régions, départements) and the years offered. The key
    # of the cached form (pvd/fragments.py ``filter_key``) is made of it without building the
    # form; a filter whose options read anything else must add it here.
    cle_des_options: tuple

    def keep(self, queryset, name, value):
        return queryset

    def _through_beneficiaires(self, queryset, **lookup):
        return queryset.filter(Exists(Beneficiaire.objects.filter(postes=OuterRef("pk"), **lookup)))

    def in_region(self, queryset, name, value):
        return self._through_beneficiaires(queryset, departement__region=value)

    def in_departement(self, queryset, name, value):
        return self._through_beneficiaires(queryset, departement=value)

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(employeur_nom__icontains=value)
            | Q(intitule__icontains=value)
            | Exists(Beneficiaire.objects.filter(postes=OuterRef("pk"), nom__icontains=value))
            | Exists(
                Poste.occupations.rel.related_model.objects.filter(poste=OuterRef("pk")).filter(
                    Q(nom__icontains=value) | Q(prenom__icontains=value)
                )
            )
        )
