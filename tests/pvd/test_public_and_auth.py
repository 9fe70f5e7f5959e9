from unittest import mock

import pytest
from django.core import mail
from django.db import OperationalError
from django.urls import reverse

pytestmark = pytest.mark.django_db

PUBLIC_PAGES = [
    "portail:accessibilite",
    "portail:mentions-legales",
    "portail:donnees-personnelles",
    "portail:plan-du-site",
]


def test_login_page_is_reachable_anonymously(client):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    assert "Connexion" in response.content.decode()


@pytest.mark.parametrize("name", PUBLIC_PAGES)
def test_legal_pages_are_public(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 200


def test_accessibility_page_states_conformity(client):
    content = client.get(reverse("portail:accessibilite")).content.decode()
    assert "non conforme" in content


def test_footer_links_mandatory_pages(client):
    content = client.get(reverse("account_login")).content.decode()
    for name in PUBLIC_PAGES:
        assert reverse(name) in content


@pytest.mark.parametrize(
    "url", ["/", "/communes/", "/communes/19275/", "/acces/", "/journal/", "/acces/nouveau/"]
)
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_healthz_answers_200_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_healthz_answers_503_when_database_is_down(client):
    with mock.patch("portail.views.connection.cursor", side_effect=OperationalError("down")):
        response = client.get("/healthz")
    assert response.status_code == 503


def test_login_with_email_and_password(client, prefecture_36):
    response = client.post(
        reverse("account_login"),
        {"login": "prefecture-36@test.pvd.fr", "password": "pvd-demo"},
    )
    assert response.status_code == 302
    home = client.get("/")
    assert "Indre" in home.content.decode()


def test_wrong_password_is_refused_in_french(client, prefecture_36):
    response = client.post(
        reverse("account_login"),
        {"login": "prefecture-36@test.pvd.fr", "password": "mauvais"},
    )
    assert response.status_code == 200
    assert "mot de passe" in response.content.decode().lower()
    assert "_auth_user_id" not in client.session


def test_repeated_failed_logins_are_rate_limited(client, prefecture_36):
    for _ in range(5):
        client.post(
            reverse("account_login"), {"login": "prefecture-36@test.pvd.fr", "password": "x"}
        )
    response = client.post(
        reverse("account_login"),
        {"login": "prefecture-36@test.pvd.fr", "password": "pvd-demo"},
    )
    # Even the right password is refused while the account is throttled.
    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 429)


def test_password_reset_sends_an_email(client, prefecture_36):
    response = client.post(
        reverse("account_reset_password"), {"email": "prefecture-36@test.pvd.fr"}
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["prefecture-36@test.pvd.fr"]


def test_nobody_can_sign_up(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "intrus@example.fr",
            "password1": "Tr3s-long-mdp!",
            "password2": "Tr3s-long-mdp!",
        },
    )
    from pvd.models import User

    assert not User.objects.filter(email="intrus@example.fr").exists()
    assert response.status_code == 200


def test_logout_is_a_post(client_for, national):
    client = client_for(national)
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302
