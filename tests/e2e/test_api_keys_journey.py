"""National staff create a partner's API key in the browser (shown once), and the partner's
script reads the API with it; the API's documentation page works under the CSP."""

import json
import urllib.error
import urllib.request

import pytest

from api.models import UtilisationCle
from pvd.models import User

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def read(url: str, key: str) -> tuple[int, dict]:
    """The partner's script: plain urllib, its key in the Authorization header."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_national_creates_a_key_and_a_partner_script_reads_with_it(
    login, live_server, territoires, csp_violations
):
    page = login("anct@test.pvd.fr")
    page.get_by_role("link", name="Accès").first.click()
    page.get_by_role("link", name="Clés d’API des partenaires").click()
    page.get_by_role("link", name="Créer une clé").click()
    page.get_by_label("Organisme").fill("Préfecture de l'Indre (SI)")
    prefecture = User.objects.get(email="prefecture-36@test.pvd.fr")
    page.get_by_label("Agit en tant que").select_option(label=str(prefecture))
    page.get_by_role("button", name="Créer la clé").click()
    page.get_by_text("Copiez la clé maintenant").wait_for()
    key = page.get_by_label("Clé d’API").input_value()
    assert key.startswith("pvd_")

    # Shown once: a reload no longer shows it.
    page.reload()
    page.get_by_text("Cette clé a déjà été affichée").wait_for()
    assert key not in page.content()

    status, body = read(f"{live_server.url}/api/v1/beneficiaires/?taille=100", key)
    assert status == 200
    assert body["count"] == 16  # Indre's beneficiaries, as on the préfecture's pages
    status, problem = read(f"{live_server.url}/api/v1/beneficiaires/", "pvd_x_y")
    assert (status, problem["title"]) == (401, "Authentification requise")
    assert UtilisationCle.objects.filter(cle__organisation__startswith="Préfecture").count() == 1

    # Revoked in the browser: the script is refused.
    page.goto("/cles-api/")
    page.get_by_role("button", name="Révoquer la clé de Préfecture de l'Indre (SI)").click()
    page.get_by_text("est révoquée").wait_for()
    status, problem = read(f"{live_server.url}/api/v1/beneficiaires/", key)
    assert (status, problem["detail"]) == (401, "Cette clé d'API a été révoquée.")
    assert csp_violations == []


def test_the_api_documentation_works_under_the_csp(page, territoires, csp_violations):
    page.goto("/api/v1/docs/")
    page.get_by_text("API du portail Petites villes de demain").first.wait_for()
    page.get_by_text("/api/v1/communes-pvd/").first.wait_for()
    assert [v for v in csp_violations if "script" in v] == []


def test_the_redoc_documentation_works_under_the_csp(page, territoires, csp_violations):
    page.goto("/api/v1/docs/")
    link = page.get_by_role("link", name="Redoc").first
    assert link.get_attribute("href") == "/api/v1/redoc/"  # Swagger UI opens it in a new tab
    page.goto("/api/v1/redoc/")
    title = page.get_by_role("heading", name="API du portail Petites villes de demain")
    title.wait_for()
    page.get_by_role("heading", name="Conventions-cadres valant ORT signées").wait_for()
    # Redoc's own styles (injected with the nonce) apply: its theme's font is the one given.
    font = title.evaluate("element => getComputedStyle(element).fontFamily")
    assert font.startswith("Marianne")
    # Nothing refused but Redoc's footer logo, which it asks its CDN for: refused, not fetched.
    assert (
        len(csp_violations) == 1
        and "https://cdn.redoc.ly/redoc/logo-mini.svg" in (csp_violations[0])
    )
