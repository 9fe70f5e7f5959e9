"""What the API publishes. Public serializers carry no person's name or e-mail
(tests/api/test_personal_data.py lists every public field)."""

from decimal import Decimal

from django.utils import timezone
from rest_framework import serializers

from actions.models import FicheAction, LigneFinancement
from communes.models import Beneficiaire
from conventions.models import Convention
from opendata.jeux import PAR_SLUG, ligne_scdl
from postes.models import Poste

# Public data sets -----------------------------------------------------------------------------


STATUTS = dict(Beneficiaire.Statut.choices)


class CommunePvdSerializer(serializers.Serializer):
    """A commune of the programme, from the plain rows of ``CommunePvdViewSet``."""

    insee_com = serializers.CharField()
    lib_com = serializers.CharField()
    id_pvd = serializers.CharField(allow_null=True)
    date_signature = serializers.DateField(allow_null=True)
    siren_epci = serializers.CharField(allow_null=True)
    lib_epci = serializers.CharField(allow_null=True)
    insee_dep = serializers.CharField()
    lib_dep = serializers.CharField()
    insee_reg = serializers.CharField()
    lib_reg = serializers.CharField()
    beneficiaire = serializers.CharField()
    statut = serializers.CharField()
    date_convention_cadre = serializers.DateField(allow_null=True)

    def to_representation(self, row: dict) -> dict:
        # The row already holds the published values: no per-field work on 1,000 rows.
        fields = dict(row)
        fields["statut"] = STATUTS[fields.pop("statut_code")]
        fields["date_signature"] = fields.pop("date_adhesion")
        fields["beneficiaire"] = fields.pop("nom_beneficiaire")
        return {name: fields[name] for name in self.fields}


class ConventionCadreSerializer(serializers.ModelSerializer):
    id_convention = serializers.IntegerField(source="pk")
    beneficiaire = serializers.CharField(source="beneficiaire.nom")
    siren_epci = serializers.CharField(source="beneficiaire.epci_id", allow_null=True)
    insee_dep = serializers.CharField(source="beneficiaire.departement_id")
    lib_dep = serializers.CharField(source="beneficiaire.departement.nom")
    statut = serializers.CharField(source="statut_label")

    class Meta:
        model = Convention
        fields = [
            "id_convention",
            "beneficiaire",
            "siren_epci",
            "insee_dep",
            "lib_dep",
            "statut",
            "date_signature",
            "date_entree_vigueur",
            "duree_annees",
            "date_fin",
        ]


SCDL_FIELDS = [
    "nomAttribuant",
    "idAttribuant",
    "dateConvention",
    "referenceDecision",
    "nomBeneficiaire",
    "idBeneficiaire",
    "rnaBeneficiaire",
    "objet",
    "montant",
    "nature",
    "conditionsVersement",
    "datesPeriodeVersement",
    "idRAE",
    "notificationUE",
    "pourcentageSubvention",
    "dispositifAide",
]


def _scdl_representation(self, instance: LigneFinancement) -> dict:
    return ligne_scdl(instance)


# A notified financing line as a SCDL « subventions » 2.1.1 record (its 16 fields, as text).
SubventionSerializer = type(
    "SubventionSerializer",
    (serializers.Serializer,),
    {
        **{name: serializers.CharField(read_only=True) for name in SCDL_FIELDS},
        "to_representation": _scdl_representation,
        "__module__": __name__,
    },
)


def _chiffres_representation(self, row: list) -> dict:
    values = [f"{v:.2f}" if isinstance(v, Decimal) else v for v in row]
    return dict(zip(CHIFFRES.header, values, strict=True))


# The programme's figures by département (opendata/jeux.py: « chiffres-departements »).
CHIFFRES = PAR_SLUG["chiffres-departements"]
ChiffresDepartementSerializer = type(
    "ChiffresDepartementSerializer",
    (serializers.Serializer,),
    {
        **{
            name: serializers.CharField(read_only=True)
            if name.startswith(("insee", "lib", "montant"))
            else serializers.IntegerField(read_only=True)
            for name in CHIFFRES.header
        },
        "to_representation": _chiffres_representation,
        "__module__": __name__,
    },
)


# Partners' systems (with a key) ---------------------------------------------------------------


class BeneficiaireSerializer(serializers.ModelSerializer):
    statut = serializers.CharField(source="get_statut_display")
    communes = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Beneficiaire
        fields = ["id", "nom", "statut", "epci", "departement", "communes", "updated_at"]

    def to_representation(self, row: dict) -> dict:
        # A plain row of BeneficiaireViewSet, written out as the fields above give it.
        return {
            "id": row["id"],
            "nom": row["nom"],
            "statut": STATUTS[row["statut"]],
            "epci": row["epci"],
            "departement": row["departement"],
            "communes": row["communes"],
            "updated_at": _horodatage(row["updated_at"]),
        }


class ConventionSerializer(serializers.ModelSerializer):
    statut = serializers.CharField(source="statut_label")

    class Meta:
        model = Convention
        fields = [
            "id",
            "beneficiaire",
            "type",
            "titre",
            "statut",
            "date_signature",
            "date_entree_vigueur",
            "duree_annees",
            "date_fin",
            "updated_at",
        ]


class LigneFinancementSerializer(serializers.ModelSerializer):
    financeur = serializers.CharField(source="financeur.nom")

    class Meta:
        model = LigneFinancement
        fields = ["financeur", "dispositif", "montant", "statut", "date_decision"]


def _horodatage(value) -> str | None:
    """A datetime as DRF's DateTimeField gives it (local time, ISO 8601, « Z » for UTC), for
    a fraction of its cost on a 1,000-row page."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _iso(day) -> str | None:
    return day.isoformat() if day else None


def _montant(value) -> str | None:
    return None if value is None else f"{value:.2f}"


# The fiche's columns a row of FicheViewSet holds (``attach`` adds ``axe_nom`` and
# ``financements``).
FICHE_COLONNES = [
    "id",
    "beneficiaire_id",
    "reference",
    "titre",
    "axe_id",
    "description",
    "maitre_ouvrage_type",
    "maturite",
    "avancement",
    "date_debut_prevue",
    "date_fin_prevue",
    "date_debut_reelle",
    "date_fin_reelle",
    "cout_total",
    "updated_at",
]


class FicheSerializer(serializers.ModelSerializer):
    axe = serializers.CharField(source="axe.nom")
    financements = LigneFinancementSerializer(many=True)

    def to_representation(self, row: dict) -> dict:
        # A plain row of FicheViewSet, written out as the fields above give it
        # (tests/api/test_serializers.py): a 1,000-fiche page spends its time here otherwise.
        return {
            "id": row["id"],
            "beneficiaire": row["beneficiaire_id"],
            "reference": row["reference"],
            "titre": row["titre"],
            "axe": row["axe_nom"],
            "description": row["description"],
            "maitre_ouvrage_type": row["maitre_ouvrage_type"],
            "maturite": row["maturite"],
            "avancement": row["avancement"],
            "date_debut_prevue": _iso(row["date_debut_prevue"]),
            "date_fin_prevue": _iso(row["date_fin_prevue"]),
            "date_debut_reelle": _iso(row["date_debut_reelle"]),
            "date_fin_reelle": _iso(row["date_fin_reelle"]),
            "cout_total": _montant(row["cout_total"]),
            "financements": [
                {
                    "financeur": ligne["financeur_nom"],
                    "dispositif": ligne["dispositif"],
                    "montant": _montant(ligne["montant"]),
                    "statut": ligne["statut"],
                    "date_decision": _iso(ligne["date_decision"]),
                }
                for ligne in row["financements"]
            ],
            "updated_at": _horodatage(row["updated_at"]),
        }

    class Meta:
        model = FicheAction
        fields = [
            "id",
            "beneficiaire",
            "reference",
            "titre",
            "axe",
            "description",
            "maitre_ouvrage_type",
            "maturite",
            "avancement",
            "date_debut_prevue",
            "date_fin_prevue",
            "date_debut_reelle",
            "date_fin_reelle",
            "cout_total",
            "financements",
            "updated_at",
        ]


class PosteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Poste
        fields = [
            "id",
            "beneficiaires",
            "intitule",
            "employeur_siren",
            "employeur_nom",
            "type_contrat",
            "etp",
            "etat",
            "vacant_depuis",
            "updated_at",
        ]
