"""One journey per role, each walking the role's main tasks end to end in Chromium and
checking what the user sees: the visitor (legal pages, forgotten password, login), national
staff (open an account, read the journal, drill down the programme's figures), the préfecture
(select and decide, convention deadlines, posts), the chef de projet (update the plan, Excel
round-trip, the convention's PDF), the élu (dashboard, bilan, the plan read-only) and the
read-only partner. Other files in tests/e2e walk single tasks in more detail."""

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail
from openpyxl import load_workbook
from pypdf import PdfReader

from actions.models import FicheAction
from communes.models import Beneficiaire, Departement
from conventions.models import Convention, DocumentConvention
from postes.models import Occupation, Poste
from pvd.models import User
from tests.actions.test_plan_readmodel import make_fiche
from tests.factories import CommuneFactory, EPCIFactory
from tests.rappels.conftest import set_adhesion

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# « Importer / exporter » leads partners to the exports; its import form is not theirs.
EDIT_LINKS = re.compile(
    r"^(Modifier|Nouvelle|Nouveau|Ajouter|Supprimer|Proposer|Enregistrer|Importer(?! / exporter))"
)


def words(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split())


def test_a_visitor_reads_the_legal_pages_resets_a_forgotten_password_and_logs_in(page, sans_role):
    page.goto("/communes/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_role("link", name="Accessibilité : non conforme").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Déclaration d’accessibilité"
    assert page.get_by_role("heading", name="Ce qui reste à vérifier à la main").is_visible()
    page.get_by_role("link", name="Mentions légales").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "Mentions légales"

    page.goto("/accounts/login/")
    page.get_by_label("Adresse électronique").fill("nouveau@test.pvd.fr")
    page.get_by_label("Mot de passe", exact=True).fill("pas-le-bon")
    page.get_by_role("button", name="Se connecter").click()
    assert page.title().startswith("Erreur")
    assert page.locator(".fr-alert--error, .fr-error-text").first.is_visible()

    page.get_by_role("link", name="Mot de passe oublié ?").click()
    page.get_by_label("Adresse électronique").fill("nouveau@test.pvd.fr")
    page.get_by_role("button", name=re.compile("initialiser")).click()
    page.wait_for_url("**/accounts/password/reset/done/")
    [message] = mail.outbox
    assert message.to == ["nouveau@test.pvd.fr"]
    link = re.search(r"https?://\S+(/accounts/password/reset/key/\S+)", message.body).group(1)
    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Choisir votre mot de passe"
    password = "Un nouveau mot de passe pour 2027"
    # The first field's label goes on with the password rules.
    page.get_by_label("Nouveau mot de passe").first.fill(password)
    page.get_by_label("Nouveau mot de passe (confirmation)").fill(password)
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_url("**/accounts/password/reset/key/done/")

    page.goto("/accounts/login/")
    page.get_by_label("Adresse électronique").fill("nouveau@test.pvd.fr")
    page.get_by_label("Mot de passe", exact=True).fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/")
    assert page.get_by_role("button", name="Se déconnecter").is_visible()


def test_national_staff_open_an_account_read_the_journal_and_drill_down_the_figures(
    login, national, csp_violations
):
    page = login("anct@test.pvd.fr")
    page.get_by_role("link", name="Accès").first.click()
    page.get_by_role("link", name="Ajouter un utilisateur").click()
    page.get_by_label("Adresse électronique").fill("agent-36@test.pvd.fr")
    page.get_by_label("Prénom").fill("Agathe")
    page.get_by_label("Nom (Optionnel)", exact=True).fill("Dupré")
    page.get_by_role("button", name="Créer le compte").click()
    assert "Compte créé" in page.locator(".fr-alert").first.inner_text()
    assert User.objects.filter(email="agent-36@test.pvd.fr").exists()
    page.get_by_role("link", name="Journal").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "Journal"
    assert page.locator("table caption").count() == 1
    latest = page.locator("main table tbody tr").first.inner_text()
    assert "Création" in latest and "agent-36@test.pvd.fr" in latest

    page.get_by_role("link", name="Accueil").first.click()
    assert page.get_by_role("heading", name="Le programme en chiffres — France").is_visible()
    page.get_by_role("link", name="Centre-Val de Loire").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Centre-Val de Loire"
    page.get_by_role("link", name="36 – Indre").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Indre"
    beneficiaires = page.locator("table", has_text="Bénéficiaires du département").inner_text()
    assert "Le Blanc" in beneficiaires and "Ussel" not in beneficiaires
    assert csp_violations == []


@pytest.fixture
def indre_to_follow(le_blanc, prefecture_36):
    """Issoudun, an Indre commune not yet in the programme; Le Blanc, adhesion signed 20 months
    ago and no convention-cadre yet; a vacant chef de projet post at Le Blanc."""
    CommuneFactory(
        code="36088",
        nom="Issoudun",
        departement=Departement.objects.get(code="36"),
        epci=EPCIFactory(siren="200071223", nom="CC du Pays d'Issoudun"),
        population=11500,
    )
    Convention.objects.filter(beneficiaire=le_blanc, type=Convention.Type.CADRE).delete()
    set_adhesion(le_blanc, date.today() - relativedelta(months=20))
    poste = Poste.objects.create(
        intitule="Chef de projet PVD Le Blanc",
        employeur_siren="213600182",
        employeur_nom="Commune du Blanc",
        date_creation=date(2021, 3, 15),
        etat=Poste.Etat.VACANT,
    )
    poste.beneficiaires.set([le_blanc])
    return poste


def test_prefecture_selects_and_decides_follows_convention_deadlines_and_fills_a_post(
    login, indre_to_follow, csp_violations
):
    page = login("prefecture-36@test.pvd.fr")
    # Select a commune, then record the decision that makes it a laureate.
    page.get_by_role("link", name="Sélection").first.click()
    page.get_by_label("Sélectionner Issoudun").check()
    page.get_by_role("button", name="Proposer les communes cochées").first.click()
    assert page.get_by_label("Codes INSEE des communes").input_value() == "36088"
    page.get_by_role("button", name="Proposer").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Issoudun")
    assert "Bénéficiaire « Issoudun » proposé" in page.content()
    page.get_by_label("Décision", exact=True).select_option("laureat")
    page.get_by_label("Date de la décision").fill(date.today().isoformat())
    page.get_by_role("textbox", name="Référence de la décision").fill("Arrêté n° 2026-101")
    page.get_by_role("button", name="Enregistrer la décision").click()
    assert "Décision enregistrée : Lauréat" in page.content()
    assert Beneficiaire.objects.get(nom="Issoudun").statut == Beneficiaire.Statut.LAUREAT

    # The convention-cadre deadlines: Le Blanc's is two months past (one, counted in whole
    # months, on some days).
    page.get_by_role("link", name="Conventions").first.click()
    page.get_by_role("link", name="Échéances des conventions-cadres").click()
    row = page.locator("main tbody tr", has=page.get_by_role("link", name="Le Blanc"))
    assert re.search(r"En retard en retard de [12] mois", words(row.text_content()))
    assert "Ussel" not in page.locator("main").inner_text()
    row.get_by_role("link", name="Le Blanc").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Le Blanc"

    # The vacant post of Le Blanc gets its new chef de projet.
    page.get_by_role("link", name="Chefs de projet").first.click()
    page.get_by_role("link", name="Chef de projet PVD Le Blanc").click()
    page.get_by_role("link", name="Enregistrer une prise de poste").click()
    page.get_by_label("Prénom").fill("Léa")
    page.get_by_label("Nom", exact=True).fill("Durand")
    page.get_by_label("Adresse électronique").fill("lea.durand@example.fr")
    page.get_by_label("Date de prise de poste").fill(date.today().isoformat())
    page.get_by_role("button", name="Enregistrer").click()
    assert "invitation au portail a été envoyée" in page.locator(".fr-alert").first.inner_text()
    assert "Léa Durand" in page.locator("main").inner_text()
    assert Occupation.objects.get(poste=indre_to_follow).email == "lea.durand@example.fr"
    assert [m.to for m in mail.outbox] == [["lea.durand@example.fr"]]
    assert csp_violations == []


def test_chef_de_projet_updates_the_plan_round_trips_it_through_excel_and_gets_the_pdf(
    login, demo_data, cdp_ussel, ussel_la_courtine, csp_violations
):
    fiche = make_fiche(
        ussel_la_courtine, "9.1", axe=1, titre="Halle du marché", cout=Decimal("100000")
    )
    page = login("cdp-ussel@test.pvd.fr")
    # Update the plan: a fiche's cost.
    page.get_by_role("link", name="Plans d’action").first.click()
    page.get_by_role("link", name="Ussel – La Courtine").click()
    page.get_by_role("link", name="9.1 – Halle du marché").click()
    page.get_by_role("link", name="Modifier la fiche et son financement").click()
    page.get_by_label("Coût total").fill("120000")
    page.get_by_role("button", name="Enregistrer la fiche").click()
    assert "9.1 – Halle du marché" in page.get_by_role("heading", level=1).inner_text()
    fiche.refresh_from_db()
    assert fiche.cout_total == Decimal("120000")

    # Excel round-trip: download the plan's workbook, change the title, import it back.
    page.get_by_role("navigation", name="vous êtes ici :").get_by_role(
        "link", name="Ussel – La Courtine"
    ).click()
    page.get_by_role("link", name="Importer / exporter (Excel, CSV)").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger le modèle (XLSX)").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    sheet = workbook["Fiches"]
    columns = {cell.value: cell.column for cell in sheet[1]}
    [row] = [
        r
        for r in range(2, sheet.max_row + 1)
        if sheet.cell(row=r, column=columns["Référence"]).value == "9.1"
    ]
    assert sheet.cell(row=row, column=columns["Coût total HT"]).value == 120000
    sheet.cell(row=row, column=columns["Titre"], value="Halle du marché couvert")
    edited = io.BytesIO()
    workbook.save(edited)
    page.get_by_label(re.compile("Classeur Excel")).set_input_files(
        files=[
            {
                "name": "plan.xlsx",
                "mimeType": "application/octet-stream",
                "buffer": edited.getvalue(),
            }
        ]
    )
    page.get_by_role("button", name="Importer").click()
    assert page.get_by_role("heading", name="Classeur importé").is_visible()
    assert "0 fiche créée, 1 mise à jour" in words(page.locator(".fr-alert--success").inner_text())
    assert "9.1" in page.locator("#bilan").inner_text()
    fiche.refresh_from_db()
    assert (fiche.titre, fiche.cout_total) == ("Halle du marché couvert", Decimal("120000"))

    # The convention's PDF (or, once signed, its plan d'action à date): generated, then
    # offered for download once ready.
    convention = Convention.objects.filter(beneficiaire=ussel_la_courtine).order_by("pk").first()
    page.get_by_role("link", name="Conventions").first.click()
    page.locator(f"main a[href='/conventions/{convention.pk}/']").first.click()
    generate = "Générer le PDF" if convention.is_editable else "Générer le plan d’action à date"
    page.get_by_role("button", name=generate).click()
    document = DocumentConvention.objects.filter(convention=convention).latest("version")
    ready = page.get_by_role("link", name=f"Télécharger la version {document.version} (PDF)")
    ready.wait_for(timeout=30000)  # in place at once when the task ran, else htmx swaps it in
    with page.expect_download() as download:
        ready.click()
    pdf = open(download.value.path(), "rb").read()
    assert pdf.startswith(b"%PDF")
    assert "Ussel" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert csp_violations == []


def test_the_elu_follows_his_city_downloads_the_bilan_and_reads_the_plan_without_editing(
    login, elu_ussel, ussel_la_courtine, csp_violations
):
    make_fiche(ussel_la_courtine, "1.1", cout=Decimal("5000"), lignes=[("DETR", "2000")])
    make_fiche(
        ussel_la_courtine,
        "1.2",
        titre="Halle du marché",
        maturite=FicheAction.Maturite.MATURATION,
        date_fin_prevue=date.today() - timedelta(days=400),
    )
    page = login("elu-ussel@test.pvd.fr")
    assert page.get_by_role(
        "heading", name="Où en est ma ville ? — Ussel – La Courtine"
    ).is_visible()
    assert "Fiches en retard (1)" in page.content()
    assert "Halle du marché" in page.locator("main").inner_text()

    page.get_by_role("button", name="Télécharger le bilan").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Bilan du").first.click()
    text = words(PdfReader(download.value.path()).pages[0].extract_text())
    assert "Bilan du plan d’action – Ussel – La Courtine" in text

    page.get_by_role("link", name="Plans d’action").first.click()
    page.get_by_role("link", name="Ussel – La Courtine").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Plan d’action")
    assert page.get_by_role("link", name="Nouvelle fiche action").count() == 0
    actions = page.locator("main a, main button").all_inner_texts()
    assert [text for text in actions if EDIT_LINKS.match(text.strip())] == []
    assert csp_violations == []


def test_the_partner_reads_everything_edits_nothing_and_is_refused_a_forced_url(
    login, demo_data, partenaire, ussel_la_courtine
):
    convention = Convention.objects.filter(beneficiaire=ussel_la_courtine).first()
    beneficiaire = Beneficiaire.objects.get(nom="Le Blanc")
    page = login("partenaire@test.pvd.fr")
    for url in (
        f"/conventions/{convention.pk}/",
        f"/actions/beneficiaire/{ussel_la_courtine.pk}/",
        f"/beneficiaires/{beneficiaire.pk}/",
    ):
        response = page.goto(url)
        assert response.status == 200, url
        actions = page.locator("main a, main button").all_inner_texts()
        assert [text for text in actions if EDIT_LINKS.match(text.strip())] == [], url
    response = page.goto(f"/conventions/{convention.pk}/modifier/")
    assert response.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "Accès refusé"
