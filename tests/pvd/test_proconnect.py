"""ProConnect login, with the provider's endpoints answered locally by `responses`."""

import json
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses
from allauth.socialaccount.models import SocialAccount
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse

from pvd.proconnect import MFA_SESSION_KEY
from pvd.settings import proconnect_apps
from tests.factories import UserFactory

ISSUER = "https://proconnect.test/api/v2"
CLIENT_ID = "portail-pvd"
DISCOVERY = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize",
    "token_endpoint": f"{ISSUER}/token",
    "userinfo_endpoint": f"{ISSUER}/userinfo",
    "jwks_uri": f"{ISSUER}/jwks",
    "end_session_endpoint": f"{ISSUER}/session/end",
    "token_endpoint_auth_methods_supported": ["client_secret_post"],
}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {
    "keys": [
        {
            **jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True),
            "kid": "pc-1",
            "alg": "RS256",
            "use": "sig",
        }
    ]
}
AGENT = "agent@prefecture.gouv.fr"


def signed(claims: dict, key=KEY) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "pc-1"})


@pytest.fixture
def configured(settings, db):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "provider_class": "pvd.proconnect.ProConnectProvider",
            "APPS": proconnect_apps(
                CLIENT_ID, "secret", f"{ISSUER}/.well-known/openid-configuration"
            ),
        }
    }


@pytest.fixture
def agent(db):
    return UserFactory(email=AGENT)


class Provider:
    """The ProConnect endpoints; each test says what the token and userinfo answers hold."""

    def __init__(self, mock: responses.RequestsMock):
        self.mock = mock
        mock.get(f"{ISSUER}/.well-known/openid-configuration", json=DISCOVERY)
        mock.get(f"{ISSUER}/jwks", json=JWKS)

    def answer(
        self,
        sub: str,
        email: str,
        *,
        nonce: str,
        id_claims: dict | None = None,
        id_key=KEY,
        userinfo_key=KEY,
        userinfo_json: bool = False,
    ) -> str:
        now = int(time.time())
        id_token = signed(
            {
                "iss": ISSUER,
                "aud": CLIENT_ID,
                "sub": sub,
                "iat": now,
                "exp": now + 60,
                "nonce": nonce,
                "acr": "eidas1",
                **(id_claims or {}),
            },
            id_key,
        )
        self.mock.post(
            f"{ISSUER}/token",
            json={
                "access_token": "at",
                "token_type": "Bearer",
                "expires_in": 60,
                "id_token": id_token,
            },
        )
        userinfo = {
            "sub": sub,
            "email": email,
            "given_name": "Camille",
            "usual_name": "Martin",
            "siret": "13002603200016",
            "idp_id": "fia1v2",
        }
        if userinfo_json:
            self.mock.get(f"{ISSUER}/userinfo", json=userinfo)
        else:
            body = signed({**userinfo, "iss": ISSUER, "aud": CLIENT_ID}, userinfo_key)
            self.mock.get(f"{ISSUER}/userinfo", body=body, content_type="application/jwt")
        return id_token


@pytest.fixture
def provider(configured):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield Provider(mock)


def start(client, **data) -> dict[str, str]:
    """Click the button: the authorisation request the browser is sent to."""
    response = client.post(reverse("proconnect_login"), data)
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == DISCOVERY["authorization_endpoint"]
    return {name: values[0] for name, values in parse_qs(url.query).items()}


def log_in(client, provider, sub: str, email: str, **answer):
    params = start(client)
    provider.answer(sub, email, nonce=answer.pop("nonce", params["nonce"]), **answer)
    return client.get(reverse("proconnect_callback"), {"code": "c0de", "state": params["state"]})


def logged_in_as(client):
    return client.session.get("_auth_user_id")


def test_no_button_and_no_route_without_configuration(client, db):
    assert "ProConnect" not in client.get(reverse("account_login")).content.decode()
    assert client.post(reverse("proconnect_login")).status_code == 404
    assert client.get(reverse("proconnect_callback")).status_code == 404


def test_login_page_shows_the_proconnect_button(client, configured, db):
    page = client.get(reverse("account_login")).content.decode()
    assert 'class="fr-connect"' in page
    assert "S’identifier avec" in page and "Qu’est-ce que ProConnect ?" in page
    assert reverse("proconnect_login") in page


def test_csp_lets_login_and_logout_forms_redirect_to_proconnect_only_when_configured(
    client, db, settings
):
    def form_action(response) -> str:
        directives = (d.strip() for d in response["Content-Security-Policy"].split(";"))
        return next(d for d in directives if d.startswith("form-action"))

    assert form_action(client.get(reverse("account_login"))) == "form-action 'self'"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {"APPS": proconnect_apps("id", "secret", f"{ISSUER}/.well-known/x")}
    }
    assert form_action(client.get(reverse("account_login"))) == (
        "form-action 'self' https://proconnect.test"
    )


def test_authorisation_request_has_proconnect_scopes_acr_and_long_state_and_nonce(client, provider):
    params = start(client, scope="phone", auth_params="acr_values=eidas3&prompt=none")
    assert set(params["scope"].split()) == {
        "openid",
        "email",
        "given_name",
        "usual_name",
        "siret",
        "idp_id",
    }
    assert params["acr_values"] == "eidas1"
    assert json.loads(params["claims"]) == {"id_token": {"amr": {"essential": True}}}
    assert "prompt" not in params
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == "http://testserver/accounts/proconnect/login/callback/"
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32


def test_invited_agent_logs_in_first_by_email_then_by_subject(client, provider, agent):
    response = log_in(client, provider, "sub-agent", "Agent@Prefecture.gouv.fr")
    assert response.status_code == 302 and response["Location"] == "/"
    assert logged_in_as(client) == str(agent.pk)
    link = SocialAccount.objects.get(user=agent)
    assert (link.provider, link.uid) == ("proconnect", "sub-agent")
    assert link.extra_data["userinfo"]["siret"] == "13002603200016"
    assert client.get("/").status_code == 200

    client.logout()
    log_in(client, provider, "sub-agent", AGENT)
    assert logged_in_as(client) == str(agent.pk)
    assert SocialAccount.objects.count() == 1


def test_unknown_agent_is_refused_with_a_french_page(client, provider, agent):
    response = log_in(client, provider, "sub-inconnu", "inconnu@ddt.gouv.fr")
    page = response.content.decode()
    assert response.status_code == 403
    assert "Votre accès au portail n’est pas encore ouvert" in page
    assert "inconnu@ddt.gouv.fr" in page and "équipe nationale" in page
    assert not logged_in_as(client)
    assert not SocialAccount.objects.exists()


def test_hostile_email_is_escaped_on_the_refusal_page(client, provider, db):
    response = log_in(client, provider, "sub-x", "<script>alert(1)</script>@x.fr")
    assert "<script>alert(1)" not in response.content.decode()


def test_email_changed_at_the_provider_keeps_the_account_of_the_subject(client, provider, agent):
    SocialAccount.objects.create(user=agent, provider="proconnect", uid="sub-agent")
    log_in(client, provider, "sub-agent", "nouvelle.adresse@prefecture.gouv.fr")
    assert logged_in_as(client) == str(agent.pk)
    agent.refresh_from_db()
    assert agent.email == AGENT


def test_former_email_of_a_linked_account_does_not_open_it_to_another_identity(
    client, provider, agent
):
    SocialAccount.objects.create(user=agent, provider="proconnect", uid="sub-agent")
    response = log_in(client, provider, "sub-successeur", AGENT)
    assert response.status_code == 403
    assert "déjà rattaché à une autre identité" in response.content.decode()
    assert not logged_in_as(client)
    assert list(SocialAccount.objects.values_list("uid", flat=True)) == ["sub-agent"]


@pytest.mark.parametrize(
    "answer",
    [
        {"id_key": OTHER_KEY},
        {"userinfo_key": OTHER_KEY},
        {"id_claims": {"aud": "un-autre-service"}},
        {"id_claims": {"iss": "https://faux-proconnect.test"}},
        {"id_claims": {"exp": int(time.time()) - 3600}},
        {"nonce": "n" * 43},
        {"userinfo_json": True},
    ],
    ids=[
        "bad-id-token-signature",
        "bad-userinfo-signature",
        "wrong-audience",
        "wrong-issuer",
        "expired",
        "wrong-nonce",
        "unsigned-userinfo",
    ],
)
def test_unverifiable_answer_is_refused_and_changes_nothing(client, provider, agent, answer):
    response = log_in(client, provider, "sub-agent", AGENT, **answer)
    assert response.status_code == 401
    assert "La connexion avec ProConnect n’a pas abouti" in response.content.decode()
    assert not logged_in_as(client)
    assert not SocialAccount.objects.exists()


def test_userinfo_about_someone_else_than_the_id_token_is_refused(client, provider, agent):
    params = start(client)
    provider.answer("sub-agent", AGENT, nonce=params["nonce"])
    userinfo = signed({"sub": "sub-autre", "email": AGENT, "iss": ISSUER, "aud": CLIENT_ID})
    provider.mock.replace(
        responses.GET, f"{ISSUER}/userinfo", body=userinfo, content_type="application/jwt"
    )
    response = client.get(reverse("proconnect_callback"), {"code": "c", "state": params["state"]})
    assert response.status_code == 401
    assert not logged_in_as(client)


def test_a_state_from_another_session_is_refused(client, provider, agent):
    from django.test import Client

    params = start(Client())
    provider.answer("sub-agent", AGENT, nonce=params["nonce"])
    response = client.get(reverse("proconnect_callback"), {"code": "c", "state": params["state"]})
    assert response.status_code == 401
    assert not logged_in_as(client)


def test_identity_cannot_be_attached_from_the_account_pages(client, provider, agent):
    client.force_login(UserFactory(email="autre@test.pvd.fr"))
    params = start(client, process="connect")
    provider.answer("sub-agent", AGENT, nonce=params["nonce"])
    response = client.get(reverse("proconnect_callback"), {"code": "c", "state": params["state"]})
    assert response.status_code == 403
    assert not SocialAccount.objects.exists()


@pytest.mark.parametrize(
    "claims, mfa",
    [
        ({"acr": "eidas1"}, False),
        ({"acr": "eidas1", "amr": ["pwd"]}, False),
        ({"acr": "eidas2"}, True),
        ({"acr": "eidas3"}, True),
        ({"acr": "eidas1", "amr": ["pwd", "mfa"]}, True),
        ({"acr": "eidas1", "amr": ["pwd", "totp"]}, True),
        ({"acr": "eidas1", "amr": ["pop"]}, True),
        ({"acr": "eidas1", "amr": ["mail"]}, False),
    ],
)
def test_mfa_counts_as_done_only_when_the_provider_asserts_it(client, provider, agent, claims, mfa):
    log_in(client, provider, "sub-agent", AGENT, id_claims=claims)
    assert logged_in_as(client) == str(agent.pk)
    assert (client.session.get(MFA_SESSION_KEY) is True) is mfa


def test_password_login_does_not_claim_mfa(client, configured, agent):
    agent.set_password("un mot de passe solide")
    agent.save()
    client.post(reverse("account_login"), {"login": AGENT, "password": "un mot de passe solide"})
    assert logged_in_as(client) == str(agent.pk)
    assert MFA_SESSION_KEY not in client.session


def test_logout_also_ends_the_proconnect_session(client, provider, agent):
    log_in(client, provider, "sub-agent", AGENT)
    id_token = provider.mock.calls[-3].response.json()["id_token"]
    response = client.post(reverse("account_logout"))
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == DISCOVERY["end_session_endpoint"]
    params = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert params["id_token_hint"] == id_token
    assert params["post_logout_redirect_uri"] == "http://testserver/accounts/login/"
    assert len(params["state"]) >= 32
    assert not logged_in_as(client)


def test_password_user_logout_is_unchanged(client, configured, agent):
    client.force_login(agent)
    response = client.post(reverse("account_logout"))
    assert response["Location"] == "/"


@pytest.mark.parametrize("url", ["/accounts/oidc/proconnect/login/", "/accounts/3rdparty/"])
def test_generic_openid_connect_and_linked_accounts_pages_are_closed(
    client, configured, agent, url
):
    client.force_login(agent)
    assert client.get(url).status_code == 404


def test_token_and_userinfo_requests_carry_the_client_secret_and_token(client, provider, agent):
    log_in(client, provider, "sub-agent", AGENT)
    token_call = next(c for c in provider.mock.calls if c.request.url.endswith("/token"))
    body = parse_qs(token_call.request.body)
    assert body["client_secret"] == ["secret"] and body["code"] == ["c0de"]
    userinfo_call = next(c for c in provider.mock.calls if c.request.url.endswith("/userinfo"))
    assert userinfo_call.request.headers["Authorization"] == "Bearer at"


def test_login_cancelled_at_the_provider_says_so_in_french(client, provider, agent):
    params = start(client)
    response = client.get(
        reverse("proconnect_callback"), {"error": "access_denied", "state": params["state"]}
    )
    page = client.get(response["Location"]).content.decode()
    assert "Connexion annulée" in page
    assert not logged_in_as(client)


def test_failed_login_is_logged_for_the_operators(client, provider, agent, caplog):
    log_in(client, provider, "sub-agent", AGENT, id_claims={"aud": "un-autre-service"})
    assert "ProConnect login failed" in caplog.text and "audience" in caplog.text.lower()


def test_national_sees_and_detaches_a_proconnect_identity(client, configured, national, agent):
    SocialAccount.objects.create(user=agent, provider="proconnect", uid="sub-agent")
    client.force_login(national)
    page = client.get(reverse("portail:user-detail", args=[agent.pk])).content.decode()
    assert "Détacher l’identité ProConnect" in page
    response = client.post(reverse("portail:proconnect-unlink", args=[agent.pk]), follow=True)
    assert "Identité ProConnect détachée" in response.content.decode()
    assert not SocialAccount.objects.exists()
    assert "aucune identité rattachée" in response.content.decode()


@pytest.mark.parametrize("who", ["prefecture_36", "partenaire", "cdp_ussel"])
def test_other_roles_cannot_detach_a_proconnect_identity(request, client, configured, agent, who):
    SocialAccount.objects.create(user=agent, provider="proconnect", uid="sub-agent")
    client.force_login(request.getfixturevalue(who))
    assert client.post(reverse("portail:proconnect-unlink", args=[agent.pk])).status_code == 403
    assert SocialAccount.objects.filter(user=agent).exists()


def test_detaching_on_an_unknown_account_is_404(client, national):
    client.force_login(national)
    assert client.post(reverse("portail:proconnect-unlink", args=[999999])).status_code == 404


def test_after_detaching_the_next_login_finds_the_account_by_email_again(client, provider, agent):
    SocialAccount.objects.create(user=agent, provider="proconnect", uid="ancien-sub")
    assert log_in(client, provider, "nouveau-sub", AGENT).status_code == 403
    SocialAccount.objects.filter(user=agent).delete()
    log_in(client, provider, "nouveau-sub", AGENT)
    assert logged_in_as(client) == str(agent.pk)
    assert SocialAccount.objects.get(user=agent).uid == "nouveau-sub"


def test_linking_is_in_the_audit_trail(client, provider, agent):
    from auditlog.models import LogEntry

    log_in(client, provider, "sub-agent", AGENT)
    link = SocialAccount.objects.get(user=agent)
    assert LogEntry.objects.get_for_object(link).filter(action=LogEntry.Action.CREATE).exists()
