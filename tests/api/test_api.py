import json
import re

import pytest
import yaml
from django.utils.http import parse_http_date

from api.models import CleApi, UtilisationCle
from communes.models import Beneficiaire
from tests.conftest import cast_user
from tests.opendata.conftest import financements  # noqa: F401 (fixture)

PROBLEM = "application/problem+json"


def key_for(email: str, **fields) -> tuple[CleApi, str]:
    return CleApi.emettre(organisation="Anah", user=cast_user(email), by=None, **fields)


def bearer(texte: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {texte}"}


# The document and its pages ------------------------------------------------------------------


def test_the_root_says_where_everything_is(client, territoires):
    body = client.get("/api/v1/").json()
    assert body["documentation"] == "http://testserver/api/v1/docs/"
    assert body["donnees_ouvertes"]["subventions"] == "http://testserver/api/v1/subventions/"
    assert body["avec_cle"]["fiches"] == "http://testserver/api/v1/fiches/"
    for url in [*body["donnees_ouvertes"].values(), body["schema"]]:
        assert client.get(url).status_code == 200


def test_schema_is_openapi_3_1(client, territoires):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"] == "3.1.0"
    assert "/api/v1/communes-pvd/" in document["paths"]
    assert "/api/v1/fiches/{id}/" in document["paths"]
    scheme = document["components"]["securitySchemes"]["cleApi"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {"cleApi": []} in document["paths"]["/api/v1/fiches/"]["get"]["security"]


def test_docs_page_loads_under_the_csp_with_no_external_url(client, territoires):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    html = response.content.decode()
    assert re.findall(r"""(?:src|href)=["'](?:https?:)?//""", html) == []
    assert "/static/drf_spectacular_sidecar/" in html


def test_redoc_page_loads_under_the_same_csp_from_local_files(client, territoires):
    response = client.get("/api/v1/redoc/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]

    def same(policy: str) -> str:
        return re.sub(r"'nonce-[^']+'", "'nonce'", policy)

    assert same(csp) == same(client.get("/api/v1/docs/")["Content-Security-Policy"])
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    html = response.content.decode()
    nonce = re.search(r"'nonce-([^']+)'", csp)[1]
    # No CDN, no web font (the nonce is base64: it may hold « // » itself).
    assert re.findall(r"(?:https?:)?//", html.replace(nonce, "")) == []
    assert '/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"' in html
    # The inline script and style carry the nonce, and Redoc gets it for the styles it adds.
    assert html.count(f'nonce="{nonce}"') == 3
    given = re.search(r'nonce: ("[^"]+")', html)[1]  # a JS string (escapejs)
    assert json.loads(given) == nonce
    assert '"/api/v1/schema/"' in html
    # Linked from the documentation (the document's description) and from the index.
    assert "[Redoc](/api/v1/redoc/)" in client.get("/api/v1/schema/").content.decode()
    assert client.get("/api/v1/").json()["documentation_redoc"].endswith("/api/v1/redoc/")


def test_docs_script_is_served_apart_for_the_csp(client, territoires):
    response = client.get("/api/v1/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")


# Public data sets -----------------------------------------------------------------------------


def test_anonymous_reads_the_pvd_communes_paginated_and_filtered(client, territoires):
    response = client.get("/api/v1/communes-pvd/", {"insee_dep": "19", "taille": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3  # La Courtine is in Creuse
    assert len(body["results"]) == 2 and body["next"]
    assert body["results"][0]["insee_com"] == "19028"
    assert body["results"][0]["id_pvd"] == "pvd-75-19-5"
    detail = client.get("/api/v1/communes-pvd/19148/").json()
    assert detail["lib_epci"] == "CC Haute-Corrèze Communauté"
    assert detail["statut"] == "Lauréat" and detail["beneficiaire"] == "Bort-les-Orgues – Neuvic"
    assert client.get("/api/v1/communes-pvd/99999/").status_code == 404


def test_public_answers_carry_an_etag_and_answer_304(client, territoires):
    first = client.get("/api/v1/conventions-cadres/")
    assert first.status_code == 200
    etag = first["ETag"]
    again = client.get("/api/v1/conventions-cadres/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304


def test_public_answers_carry_a_last_modified_and_answer_304_until_the_data_change(
    client, territoires
):
    from datetime import date

    from conventions.models import Convention

    url = "/api/v1/conventions-cadres/?insee_dep=36"
    first = client.get(url)
    assert first.status_code == 200 and first["ETag"]
    since = first["Last-Modified"]
    assert since.endswith(" GMT")
    # The same content keeps its date: a client that has it gets a 304.
    again = client.get(url, HTTP_IF_MODIFIED_SINCE=since)
    assert again.status_code == 304
    assert client.get(url)["Last-Modified"] == since
    # A signed convention-cadre in the Indre: a new content, dated later, sent in full.
    Convention.objects.create(
        beneficiaire=Beneficiaire.objects.get(nom="Le Blanc"),
        type=Convention.Type.CADRE,
        titre="Convention-cadre PVD valant ORT – Le Blanc",
        statut=Convention.Statut.SIGNEE,
        date_signature=date(2023, 6, 12),
        date_entree_vigueur=date(2023, 6, 12),
    )
    changed = client.get(url, HTTP_IF_MODIFIED_SINCE=since)
    assert changed.status_code == 200
    assert changed.json()["count"] == first.json()["count"] + 1
    assert parse_http_date(changed["Last-Modified"]) > parse_http_date(since)
    assert client.get(url, HTTP_IF_MODIFIED_SINCE=changed["Last-Modified"]).status_code == 304


@pytest.mark.parametrize(
    "path", ["/api/v1/communes-pvd/", "/api/v1/subventions/", "/api/v1/chiffres-departements/"]
)
def test_every_public_set_is_dated(client, territoires, path):
    response = client.get(path)
    assert response.status_code == 200
    modified = response["Last-Modified"]
    assert client.get(path, HTTP_IF_MODIFIED_SINCE=modified).status_code == 304


def test_subventions_endpoint_gives_scdl_records(client, financements):  # noqa: F811
    body = client.get("/api/v1/subventions/").json()
    assert body["count"] == 2
    assert {r["nomBeneficiaire"] for r in body["results"]} == {
        "Le Blanc",
        "CC Haute-Corrèze Communauté",
    }


def test_figures_by_departement_endpoint(client, financements):  # noqa: F811
    body = client.get("/api/v1/chiffres-departements/").json()
    by_dep = {row["insee_dep"]: row for row in body["results"]}
    assert set(by_dep) == {"19", "36"}
    assert by_dep["36"]["beneficiaires"] == 16
    assert by_dep["36"]["montant_notifie"] == "60000.50"


def test_bad_filter_is_a_french_problem(client, territoires):
    response = client.get("/api/v1/communes-pvd/", {"statut": "inconnu"})
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 400 and problem["title"] == "Requête invalide"
    assert "statut" in problem["erreurs"]


def test_anonymous_throttle_answers_429(client, territoires, settings):
    settings.PVD_API_THROTTLE_RATES = {"anonyme": "2/minute", "cle": "100/minute"}
    assert client.get("/api/v1/conventions-cadres/").status_code == 200
    assert client.get("/api/v1/conventions-cadres/").status_code == 200
    response = client.get("/api/v1/conventions-cadres/")
    assert response.status_code == 429
    assert response["Content-Type"] == PROBLEM
    assert response.json()["title"] == "Trop de requêtes"
    assert "Retry-After" in response


def test_key_throttle_answers_429(client, territoires, settings):
    settings.PVD_API_THROTTLE_RATES = {"anonyme": "100/minute", "cle": "1/minute"}
    _, texte = key_for("anct@test.pvd.fr")
    assert client.get("/api/v1/beneficiaires/", **bearer(texte)).status_code == 200
    assert client.get("/api/v1/beneficiaires/", **bearer(texte)).status_code == 429


def test_the_api_accepts_no_write(client, territoires):
    _, texte = key_for("anct@test.pvd.fr")
    response = client.post("/api/v1/beneficiaires/", {}, **bearer(texte))
    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM


# Partners' systems ----------------------------------------------------------------------------

HCC = {"Bort-les-Orgues – Neuvic", "Ussel – La Courtine"}
INDRE = 16


@pytest.mark.parametrize(
    ("email", "visible"),
    [
        ("anct@test.pvd.fr", INDRE + 2),
        ("prefecture-36@test.pvd.fr", INDRE),
        ("prefecture-19@test.pvd.fr", 2),
        ("cdp-ussel@test.pvd.fr", 1),
        ("elu-ussel@test.pvd.fr", 1),
        ("president-hcc@test.pvd.fr", 2),
    ],
)
def test_a_key_reads_the_perimeter_of_its_user(client, territoires, email, visible):
    _, texte = key_for(email)
    body = client.get("/api/v1/beneficiaires/", {"taille": 100}, **bearer(texte)).json()
    assert body["count"] == visible
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc")
    sees_ussel = email not in {"prefecture-36@test.pvd.fr"}
    sees_le_blanc = email in {"anct@test.pvd.fr", "prefecture-36@test.pvd.fr"}
    for beneficiaire, sees in ((ussel, sees_ussel), (le_blanc, sees_le_blanc)):
        response = client.get(f"/api/v1/beneficiaires/{beneficiaire.pk}/", **bearer(texte))
        assert response.status_code == (200 if sees else 404)


def test_another_territorys_fiche_is_a_404_problem(client, financements):  # noqa: F811
    _, texte = key_for("prefecture-19@test.pvd.fr")
    body = client.get("/api/v1/fiches/", **bearer(texte)).json()
    assert {f["reference"] for f in body["results"]} == {"2.1", "2.2"}
    assert body["results"][0]["financements"][0]["financeur"] == "DSIL"
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc").fiches.get()
    response = client.get(f"/api/v1/fiches/{le_blanc.pk}/", **bearer(texte))
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    assert response.json()["title"] == "Ressource introuvable"


def test_partner_endpoints_need_a_key(client, territoires):
    response = client.get("/api/v1/postes/")
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "authentification" in response.json()["detail"].lower()


def test_a_session_cookie_is_not_accepted(client_for, national):
    client = client_for(national)
    assert client.get("/api/v1/beneficiaires/").status_code == 401


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer pvd_000000000000_nimportequoi", "Clé d'API inconnue."),
        ("Token abc", "En-tête Authorization attendu : « Bearer <clé d'API> »."),
    ],
)
def test_a_wrong_key_is_401(client, territoires, header, message):
    response = client.get("/api/v1/conventions/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["detail"] == message


def test_a_revoked_key_is_401_even_on_public_data(client, territoires):
    cle, texte = key_for("anct@test.pvd.fr")
    assert client.get("/api/v1/conventions/", **bearer(texte)).status_code == 200
    assert cle.revoquer()
    for path in ("/api/v1/conventions/", "/api/v1/communes-pvd/"):
        response = client.get(path, **bearer(texte))
        assert response.status_code == 401
        assert response.json()["detail"] == "Cette clé d'API a été révoquée."


def test_each_use_of_a_key_is_recorded(client, territoires):
    cle, texte = key_for("prefecture-36@test.pvd.fr")
    client.get("/api/v1/postes/?etat=vacant", **bearer(texte))
    client.get("/api/v1/conventions/", **bearer(texte))
    uses = list(UtilisationCle.objects.filter(cle=cle).order_by("le"))
    assert [(u.methode, u.chemin) for u in uses] == [
        ("GET", "/api/v1/postes/?etat=vacant"),
        ("GET", "/api/v1/conventions/"),
    ]
    cle.refresh_from_db()
    assert cle.derniere_utilisation is not None


def test_the_key_is_stored_hashed(territoires):
    cle, texte = key_for("anct@test.pvd.fr")
    secret = texte.split("_", 2)[2]
    assert texte.startswith(f"pvd_{cle.prefixe}_")
    assert secret not in cle.empreinte and len(cle.empreinte) == 64
    assert CleApi.lire(texte) == cle
    assert CleApi.lire(texte[:-1] + ("A" if texte[-1] != "A" else "B")) is None


@pytest.mark.parametrize("path", ["/api/v1/fiches/", "/api/v1/beneficiaires/"])
def test_a_partner_page_costs_the_same_queries_whatever_its_rows(
    client,
    financements,  # noqa: F811
    path,
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.opendata.conftest import fiche

    _, texte = key_for("anct@test.pvd.fr")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path, {"taille": 1000}, **bearer(texte)).status_code == 200
        return len(captured)

    queries()  # the first request also fills the caches (the key user's perimeter…)
    before = queries()
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc")
    for n in range(2, 12):
        lignes = [("DSIL", "1000", "notifie", None), ("Région", "500", "prevu", None)]
        fiche(le_blanc, f"1.{n}", 10000, lignes)
    assert queries() == before


# The role table: each key reads, on every partner endpoint, what its user reads on the pages.

ROLES = {
    # email: (reads Ussel – La Courtine's objects, reads Le Blanc's objects)
    "anct@test.pvd.fr": (True, True),
    "prefecture-36@test.pvd.fr": (False, True),
    "prefecture-19@test.pvd.fr": (True, False),
    "cdp-ussel@test.pvd.fr": (True, False),
    "elu-ussel@test.pvd.fr": (True, False),
    "president-hcc@test.pvd.fr": (True, False),
    "partenaire@test.pvd.fr": (True, True),  # Banque des Territoires, France entière
    "partenaire-36@test.pvd.fr": (False, True),  # a partner's regional office, the Indre
}


@pytest.fixture
def objets(financements):  # noqa: F811
    """One object of each partner endpoint in Ussel – La Courtine and in Le Blanc."""
    from datetime import date

    from actions.models import FicheAction
    from conventions.models import Convention
    from postes.models import Poste
    from pvd.models import Role
    from tests.factories import user_with_role

    user_with_role(
        "partenaire-36@test.pvd.fr",
        Role.Kind.PARTENAIRE,
        organisation="Anah",
        departements=["36"],
    )
    found = {}
    for nom, siren in (("Ussel – La Courtine", "200066744"), ("Le Blanc", "243600319")):
        beneficiaire = Beneficiaire.objects.get(nom=nom)
        convention = Convention.objects.filter(beneficiaire=beneficiaire).first()
        convention = convention or Convention.objects.create(
            beneficiaire=beneficiaire,
            type=Convention.Type.ADHESION,
            titre=f"Convention d'adhésion – {nom}",
            statut=Convention.Statut.SIGNEE,
            date_signature=date(2021, 5, 3),
        )
        poste = Poste.objects.create(
            employeur_siren=siren,
            employeur_nom=nom,
            date_creation=date(2021, 6, 1),
            etat=Poste.Etat.VACANT,
        )
        poste.beneficiaires.set([beneficiaire])
        found[nom] = {
            "beneficiaires": beneficiaire.pk,
            "conventions": convention.pk,
            "fiches": FicheAction.objects.filter(beneficiaire=beneficiaire).first().pk,
            "postes": poste.pk,
        }
    return found


@pytest.mark.parametrize("endpoint", ["beneficiaires", "conventions", "fiches", "postes"])
@pytest.mark.parametrize("email", ROLES)
def test_role_table_a_key_reads_its_perimeter_on_every_endpoint(client, objets, email, endpoint):
    _, texte = key_for(email)
    listed = {
        row["id"]
        for row in client.get(f"/api/v1/{endpoint}/", {"taille": 1000}, **bearer(texte)).json()[
            "results"
        ]
    }
    for nom, sees in zip(("Ussel – La Courtine", "Le Blanc"), ROLES[email], strict=True):
        pk = objets[nom][endpoint]
        response = client.get(f"/api/v1/{endpoint}/{pk}/", **bearer(texte))
        assert response.status_code == (200 if sees else 404), (nom, response.json())
        assert (pk in listed) == sees


def test_a_revoked_key_is_401_on_every_endpoint(client, objets):
    cle, texte = key_for("partenaire-36@test.pvd.fr")
    cle.revoquer()
    for endpoint, pk in objets["Le Blanc"].items():
        for path in (f"/api/v1/{endpoint}/", f"/api/v1/{endpoint}/{pk}/"):
            response = client.get(path, **bearer(texte))
            assert (response.status_code, response["Content-Type"]) == (401, PROBLEM)
