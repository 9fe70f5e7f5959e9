import pytest

from conventions.models import Convention, Partie


@pytest.fixture
def cadre_ussel(ussel_la_courtine):
    convention = Convention.objects.create(
        beneficiaire=ussel_la_courtine,
        type=Convention.Type.CADRE,
        titre="Convention-cadre PVD valant ORT – Ussel – La Courtine",
    )
    Partie.objects.create(
        convention=convention, nature="commune", commune_id="19275", role="signataire"
    )
    Partie.objects.create(convention=convention, nature="etat", role="signataire")
    Partie.objects.create(
        convention=convention,
        nature="partenaire",
        nom_partenaire="Banque des Territoires",
        role="en_presence",
    )
    return convention
