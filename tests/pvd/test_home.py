import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def home(client_for, user) -> str:
    response = client_for(user).get(reverse("portail:home"))
    assert response.status_code == 200
    return response.content.decode()


def test_national_home_shows_the_whole_country(client_for, national):
    content = home(client_for, national)
    assert "Nouvelle-Aquitaine" in content
    assert "Centre-Val de Loire" in content


def test_prefecture_home_shows_its_departement_only(client_for, prefecture_36):
    content = home(client_for, prefecture_36)
    assert "Indre" in content
    assert "Corrèze" not in content
    assert "?departement=36" in content


def test_chef_de_projet_home_lists_their_communes(client_for, cdp_ussel):
    content = home(client_for, cdp_ussel)
    assert "Ussel" in content
    assert "La Courtine" in content
    assert "Neuvic" not in content


def test_elu_home_shows_their_commune(client_for, elu_ussel):
    content = home(client_for, elu_ussel)
    assert "Ussel" in content
    assert "Où en est ma ville ?" in content  # their beneficiary, Ussel – La Courtine
    assert "Le Blanc" not in content


def test_epci_president_home_shows_the_epci_communes(client_for, elu_epci):
    content = home(client_for, elu_epci)
    for name in ("Ussel", "La Courtine", "Neuvic", "Bort-les-Orgues"):
        assert name in content


def test_account_without_role_is_told_to_contact_anct(client_for, sans_role):
    content = home(client_for, sans_role)
    assert "aucun rôle" in content.lower()


def test_navigation_depends_on_role(client_for, national, elu_ussel):
    assert reverse("portail:user-list") in home(client_for, national)
    assert reverse("portail:user-list") not in home(client_for, elu_ussel)
