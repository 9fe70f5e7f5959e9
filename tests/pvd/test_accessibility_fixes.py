"""What the accessibility sweep and the HTML checker found, fixed: each fix where it lives."""

import re

import pytest
from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from communes.models import Commune
from conventions.models import Convention, Partie
from conventions.pdf import nom_epci
from pvd.french import de
from tests.factories import EPCIFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("nom", "attendu"),
    [
        ("Issoudun", "d'Issoudun"),
        ("Ussel", "d'Ussel"),
        ("Égletons", "d'Égletons"),
        ("La Courtine", "de La Courtine"),
        ("Le Blanc", "du Blanc"),
        ("Les Sables-d'Olonne", "des Sables-d'Olonne"),
        ("Valençay", "de Valençay"),
    ],
)
def test_de_elides_before_a_vowel_and_contracts_the_article(nom, attendu):
    assert de(nom) == attendu


def test_a_commune_party_is_named_with_the_elision(territoires):
    partie = Partie(nature=Partie.Nature.COMMUNE, commune=Commune.objects.get(code="19275"))
    assert str(partie) == "Commune d'Ussel"


def test_an_epci_already_named_communaute_is_not_called_communaute_twice():
    assert nom_epci(EPCIFactory(nom="CC Haute-Corrèze Communauté")) == "Haute-Corrèze Communauté"
    assert nom_epci(EPCIFactory(nom="CC Brenne - Val de Creuse")) == (
        "Communauté de communes Brenne - Val de Creuse"
    )


def test_an_avenant_status_agrees_with_the_masculine():
    avenant = Convention(type=Convention.Type.AVENANT, statut=Convention.Statut.SIGNEE)
    cadre = Convention(type=Convention.Type.CADRE, statut=Convention.Statut.SIGNEE)
    assert avenant.statut_label == "Signé"
    assert cadre.statut_label == "Signée"


ROLES = ["national", "prefecture_36", "cdp_ussel", "elu_ussel", "partenaire", "sans_role"]


@pytest.mark.parametrize("role", ROLES)
def test_the_sitemap_links_only_to_pages_the_user_may_open(request, client_for, role):
    client = client_for(request.getfixturevalue(role))
    content = client.get(reverse("portail:plan-du-site")).content.decode()
    main = content[content.index("<main") : content.index("</main>")]
    links = set(re.findall(r'href="(/[^"]*)"', main))
    assert reverse("portail:home") in links
    for link in links:
        assert client.get(link).status_code == 200, link
    if role == "national":
        assert {reverse("portail:audit-log"), reverse("actions:list")} <= links
    if role == "partenaire":
        assert reverse("portail:audit-log") not in links
        assert reverse("communes:beneficiaire-create") not in links


def test_the_sitemap_offers_login_to_visitors(client):
    content = client.get(reverse("portail:plan-du-site")).content.decode()
    assert reverse("account_login") in content
    assert reverse("portail:user-list") not in content


def test_pagination_links_that_lead_nowhere_are_announced_disabled():
    request = RequestFactory().get("/communes/")
    first = Paginator(range(100), 10).page(1)
    html = render_to_string("dsfr/pagination.html", {"page_obj": first, "request": request})
    previous = re.search(r'<a class="[^"]*--prev[^"]*"([^>]*)>', html).group(1)
    assert 'aria-disabled="true"' in previous and "href" not in previous
    following = re.search(r'<a class="[^"]*--next[^"]*"([^>]*)>', html).group(1)
    assert 'href="?page=2"' in following and "aria-disabled" not in following


def test_password_rules_are_a_sentence_not_a_list_inside_the_label(client_for, elu_ussel):
    content = client_for(elu_ussel).get(reverse("account_change_password")).content.decode()
    hint = re.search(r'id="id_password1_helptext">(.*?)</span>', content, re.S).group(1)
    assert "au minimum 12 caractères" in hint
    assert "<ul>" not in hint


def test_the_accessibility_statement_says_what_is_tested_and_what_is_not(client):
    content = client.get(reverse("portail:accessibilite")).content.decode()
    assert "Ce qui est testé automatiquement" in content
    assert "Ce qui reste à vérifier à la main" in content
    result = r"Résultat au \d+ \w+ \d{4} : \d+ pages et\s+\d+ états de page testés"
    assert re.search(result, content)
    assert re.search(r"<li>préfecture : \d+ pages</li>", content)
    assert re.search(r"formulaires renvoyés avec leurs erreurs : \d+", content)


def test_date_and_file_fields_use_the_dsfr_components_with_french_hints(client_for, cdp_ussel):
    from actions.models import FicheAction, ensure_axes

    beneficiaire = cdp_ussel.roles.get().beneficiaires.get()
    ensure_axes(beneficiaire)
    fiche = FicheAction.objects.create(
        beneficiaire=beneficiaire, axe=beneficiaire.axes.first(), reference="1.1", titre="OPAH"
    )
    client = client_for(cdp_ussel)
    content = client.get(reverse("actions:point-create", args=[fiche.pk])).content.decode()
    assert "Format attendu : jj/mm/aaaa" in content
    upload = re.search(r'<div class="fr-upload-group[^"]*">.*?</div>', content, re.S).group(0)
    assert 'type="file"' in upload and 'class="fr-upload"' in upload
