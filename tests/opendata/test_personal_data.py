"""No person's name or e-mail in the open files and the public API: every published field is
listed here, and a new one fails this test until it is reviewed and added."""

import yaml
from django.core.files.storage import default_storage
from django.test import TestCase

from actions.models import FicheAction
from opendata import publication
from opendata.jeux import JEUX
from opendata.models import Publication
from tests.conftest import cast_user

PUBLIC_PATHS = [
    "/api/v1/communes-pvd/",
    "/api/v1/conventions-cadres/",
    "/api/v1/subventions/",
    "/api/v1/chiffres-departements/",
]

# Territories, beneficiaries, conventions, amounts and organisations' names: no person.
ALLOWED = {
    # ANCT's list and the detailed one
    "insee_com", "lib_com", "id_pvd", "date_signature", "siren_com", "siren_epci", "lib_epci",
    "insee_dep", "lib_dep", "insee_reg", "lib_reg", "beneficiaire", "statut",
    "date_convention_cadre",
    # conventions-cadres
    "id_convention", "insee_communes", "date_entree_vigueur", "duree_annees", "date_fin",
    # SCDL subventions 2.1.1 (attribuant and bénéficiaire are organisations)
    "nomAttribuant", "idAttribuant", "dateConvention", "referenceDecision", "nomBeneficiaire",
    "idBeneficiaire", "rnaBeneficiaire", "objet", "montant", "nature", "conditionsVersement",
    "datesPeriodeVersement", "idRAE", "notificationUE", "pourcentageSubvention",
    "dispositifAide",
    # figures by département
    "beneficiaires", "fiches", "fiches_livree", "fiches_engagee", "fiches_en_etude",
    "fiches_non_demarree", "montant_prevu", "montant_sollicite", "montant_notifie",
    "montant_verse", "postes_pourvus", "postes_vacants", "financeur",
}  # fmt: skip


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    return schema


def public_api_fields(document: dict) -> set[str]:
    """The fields of every answer of the public paths (lists and details)."""
    fields = set()
    urls = [url for url in document["paths"] if url.startswith(tuple(PUBLIC_PATHS))]
    assert len(urls) == 2 * len(PUBLIC_PATHS) - 1  # the figures have no detail
    for url in urls:
        response = document["paths"][url]["get"]["responses"]["200"]
        schema = _resolve(document, response["content"]["application/json"]["schema"])
        if "results" in schema.get("properties", {}):
            schema = _resolve(document, schema["properties"]["results"]["items"])
        fields |= set(schema["properties"])
    return fields


def test_every_public_field_is_on_the_allow_list(client, territoires):
    document = yaml.safe_load(client.get("/api/v1/schema/").content)
    api_fields = public_api_fields(document)
    file_fields = {name for jeu in JEUX for name in jeu.header}
    assert api_fields <= ALLOWED, api_fields - ALLOWED
    assert file_fields <= ALLOWED, file_fields - ALLOWED
    assert "insee_com" in api_fields and "nomAttribuant" in api_fields


def test_no_name_or_email_of_a_person_is_published(client, financements):
    user = cast_user("anct@test.pvd.fr")
    user.first_name, user.last_name = "Jeanne", "Publiable"
    user.save()
    FicheAction.objects.update(
        referent="Jeanne Publiable", updated_by=user, maitre_ouvrage="M. Jean Privé"
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        publication.request_all()
    published = b"".join(
        default_storage.open(p.fichier.name).read() for p in Publication.objects.dernieres()
    ).decode()
    assert len(Publication.objects.dernieres()) == len(JEUX)
    for path in PUBLIC_PATHS:
        published += client.get(path).content.decode()
    assert "Le Blanc" in published  # the check reads real content
    for secret in ("Publiable", "anct@test.pvd.fr", "Jean Privé", "@"):
        assert secret not in published
