"""Dashboards in a browser: the élu's « Où en est ma ville ? » and its report, the
préfecture's table sorted by late fiches, ANCT's drill-down from France to a département."""

import io
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from actions.models import FicheAction
from pvd.models import Role
from tests.actions.test_plan_readmodel import make_fiche
from tests.factories import user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def plans(ussel_la_courtine, le_blanc):
    late = {"maturite": FicheAction.Maturite.MATURATION, "date_fin_prevue": date(2020, 1, 1)}
    make_fiche(ussel_la_courtine, "1.1", cout=Decimal("5000"), lignes=[("DETR", "2000")])
    make_fiche(ussel_la_courtine, "1.2", titre="Halle du marché", **late)
    make_fiche(le_blanc, "1.1", titre="Quais de la Creuse", **late)
    make_fiche(le_blanc, "1.2", titre="Friche Gaillard", **late)


def test_elu_opens_the_dashboard_and_downloads_the_report(
    login, territoires, plans, csp_violations
):
    user_with_role("elu-ussel@test.pvd.fr", Role.Kind.ELU, communes=["19275"])
    page = login("elu-ussel@test.pvd.fr")
    assert page.get_by_role(
        "heading", name="Où en est ma ville ? — Ussel – La Courtine"
    ).is_visible()
    assert "Fiches en retard (1)" in page.content()
    page.get_by_role("button", name="Télécharger le bilan").click()
    link = page.get_by_role("link", name="Bilan du").first
    with page.expect_download() as info:
        link.click()
    content = open(info.value.path(), "rb").read()
    text = " ".join(PdfReader(io.BytesIO(content)).pages[0].extract_text().split())
    assert "Bilan du plan d’action – Ussel – La Courtine" in text
    assert csp_violations == []


def test_prefecture_sorts_its_beneficiaries_by_late_fiches(
    login, territoires, plans, csp_violations
):
    user_with_role("prefecture-36@test.pvd.fr", Role.Kind.PREFECTURE, departements=["36"])
    page = login("prefecture-36@test.pvd.fr")
    page.get_by_label("Trier par").select_option(label="Fiches en retard")
    page.get_by_role("button", name="Afficher").click()
    first = page.locator("#tableau-beneficiaires tbody tr").first
    assert "Le Blanc" in first.inner_text()
    assert "Ussel" not in page.locator("#tableau-beneficiaires").inner_text()
    first.get_by_role("link", name="Le Blanc").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Le Blanc"
    assert "Friche Gaillard" in page.content()
    assert csp_violations == []


def test_anct_drills_down_from_france_to_a_departement(login, territoires, plans, csp_violations):
    user_with_role("anct@test.pvd.fr", Role.Kind.NATIONAL)
    page = login("anct@test.pvd.fr")
    assert page.get_by_role("heading", name="Le programme en chiffres — France").is_visible()
    page.get_by_role("link", name="Centre-Val de Loire").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Centre-Val de Loire"
    page.get_by_role("link", name="36 – Indre").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Indre"
    assert "Le Blanc" in page.locator("table", has_text="Bénéficiaires du département").inner_text()
    assert csp_violations == []
