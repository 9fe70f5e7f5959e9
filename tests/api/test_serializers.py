from rest_framework import serializers

from actions.models import FicheAction
from api.serializers import FicheSerializer, LigneFinancementSerializer
from tests.opendata.conftest import financements  # noqa: F401 (fixture)


class DeclaredFiche(serializers.ModelSerializer):
    """What the declared fields give (and the OpenAPI document describes)."""

    axe = serializers.CharField(source="axe.nom")
    financements = LigneFinancementSerializer(many=True)

    class Meta:
        model = FicheAction
        fields = FicheSerializer.Meta.fields


def test_the_written_out_fiche_is_what_its_declared_fields_give(financements):  # noqa: F811
    FicheAction.objects.filter(reference="1.1").update(description="Une place à refaire")
    fiches = FicheAction.objects.prefetch_related("financements__financeur")
    assert fiches.count() == 3
    for fiche in fiches:
        assert FicheSerializer(fiche).data == DeclaredFiche(fiche).data
