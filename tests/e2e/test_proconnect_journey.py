"""A State agent logs in with ProConnect through the real redirect flow, then logs out of both.

The identity provider is a real OpenID Connect server on localhost: oidc-provider-mock (PyPI,
Flask + Authlib) run in a thread. Like ProConnect, it is made to answer the userinfo as a JWT
signed with its own key (ProConnect's `application/jwt`), so the portal checks it against the
provider's published keys exactly as it does in production.
"""

import threading

import flask
import jwt
import pytest
import werkzeug.serving
from oidc_provider_mock import User, app

from pvd.models import Role
from pvd.settings import proconnect_apps
from tests.factories import user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLIENT_ID = "portail-pvd-e2e"
AGENT = "agent-proconnect@test.pvd.fr"


def _userinfo_as_signed_jwt(response: flask.Response) -> flask.Response:
    if flask.request.path != "/userinfo" or response.status_code != 200:
        return response
    private_key = flask.g.oidc_provider_mock_storage.jwk.as_dict(is_private=True)
    claims = {
        **response.get_json(),
        "iss": flask.request.host_url.rstrip("/"),
        "aud": CLIENT_ID,
    }
    token = jwt.encode(claims, jwt.PyJWK(private_key).key, algorithm="RS256")
    return flask.Response(token, content_type="application/jwt")


@pytest.fixture
def proconnect_idp(settings, monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on localhost only
    idp = app(
        require_nonce=True,
        user_claims=[
            User(
                sub="agent-indre-36",
                claims={"email": AGENT, "usual_name": "Martin", "siret": "17360001800014"},
            )
        ],
    )
    idp.after_request(_userinfo_as_signed_jwt)
    server = werkzeug.serving.make_server("localhost", 0, idp, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    url = f"http://localhost:{server.server_port}"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "provider_class": "pvd.proconnect.ProConnectProvider",
            "APPS": proconnect_apps(CLIENT_ID, "secret-e2e", url),
        }
    }
    yield url
    server.shutdown()
    thread.join(5)
    server.server_close()


def test_agent_logs_in_with_proconnect_and_out_of_both(
    page, live_server, territoires, proconnect_idp
):
    agent = user_with_role(AGENT, Role.Kind.PREFECTURE, departements=["36"])

    page.goto("/accounts/login/")
    page.get_by_role("button", name="S’identifier avec ProConnect").click()
    # At the identity provider: log in as the agent.
    page.wait_for_url(f"{proconnect_idp}/oauth2/authorize**")
    page.get_by_role("button", name="agent-indre-36").click()

    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", level=1).inner_text() == f"Bonjour {agent.first_name}"
    assert agent.socialaccount_set.get().uid == "agent-indre-36"

    page.get_by_role("button", name="Se déconnecter").first.click()
    # At the identity provider: its session ends with the id token the portal was given.
    page.wait_for_url(f"{proconnect_idp}/oauth2/end_session**")
    assert "id_token_hint" in page.content()
    page.get_by_role("button", name="End session").click()

    page.wait_for_url("**/accounts/login/?state=*")
    assert page.get_by_role("button", name="S’identifier avec ProConnect").is_visible()
    page.goto("/")
    assert "/accounts/login/" in page.url
