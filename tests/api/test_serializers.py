"""The partners' lists are written out from plain rows (api/views.py, RowsViewSet): what they
give must be what the declared fields (and so the OpenAPI document) say."""

from rest_framework import serializers

from actions.models import FicheAction
from api.serializers import BeneficiaireSerializer, FicheSerializer, LigneFinancementSerializer
from communes.models import Beneficiaire
from tests.api.test_api import bearer, key_for
from tests.opendata.conftest import financements  # noqa: F401 (fixture)


class DeclaredFiche(serializers.ModelSerializer):
    """What the declared fields give (and the OpenAPI document describes)."""

    axe = serializers.CharField(source="axe.nom")
    financements = LigneFinancementSerializer(many=True)

    class Meta:
        model = FicheAction
        fields = FicheSerializer.Meta.fields


class DeclaredBeneficiaire(serializers.ModelSerializer):
    statut = serializers.CharField(source="get_statut_display")
    communes = serializers.SerializerMethodField()

    class Meta:
        model = Beneficiaire
        fields = BeneficiaireSerializer.Meta.fields

    def get_communes(self, beneficiaire: Beneficiaire) -> list[str]:
        return sorted(m.commune_id for m in beneficiaire.membres.all() if m.actif)


def test_the_written_out_fiche_is_what_its_declared_fields_give(client, financements):  # noqa: F811
    FicheAction.objects.filter(reference="1.1").update(description="Une place à refaire")
    _, texte = key_for("anct@test.pvd.fr")
    body = client.get("/api/v1/fiches/", **bearer(texte)).json()
    fiches = FicheAction.objects.prefetch_related("financements__financeur")
    assert body["count"] == fiches.count() == 3
    expected = {fiche.pk: DeclaredFiche(fiche).data for fiche in fiches}
    assert {row["id"]: row for row in body["results"]} == expected
    assert sum(len(row["financements"]) for row in body["results"]) == 5
    one = FicheAction.objects.get(reference="1.1")
    detail = client.get(f"/api/v1/fiches/{one.pk}/", **bearer(texte)).json()
    assert detail == expected[one.pk]


def test_the_written_out_beneficiaire_is_what_its_declared_fields_give(client, territoires):
    _, texte = key_for("anct@test.pvd.fr")
    body = client.get("/api/v1/beneficiaires/", {"taille": 100}, **bearer(texte)).json()
    expected = {b.pk: DeclaredBeneficiaire(b).data for b in Beneficiaire.objects.all()}
    assert {row["id"]: row for row in body["results"]} == expected
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    detail = client.get(f"/api/v1/beneficiaires/{ussel.pk}/", **bearer(texte)).json()
    assert detail == expected[ussel.pk] and detail["communes"] == ["19275", "23067"]
