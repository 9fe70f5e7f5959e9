"""ProConnect, the State agents' OpenID Connect federation, on allauth's OpenID Connect provider.

What ProConnect needs beyond allauth's generic provider: a nonce bound to the login, the id
token always checked against the provider's keys, a userinfo that comes back as a signed JWT,
scopes and ``acr_values`` that the page cannot change, and a logout that also ends the
ProConnect session. Who may log in (an existing account only) is decided in
``pvd.adapters.SocialAccountAdapter``.
"""

from urllib.parse import urlencode, urlsplit

import jwt
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.crypto import constant_time_compare, get_random_string

PROVIDER_ID = "proconnect"
# ProConnect refuses a state or a nonce shorter than 32 characters.
RANDOM_LENGTH = 43
SIGNING_ALGORITHMS = ["RS256", "ES256"]
# The MFA middleware treats this session flag as « second factor already checked ».
MFA_SESSION_KEY = "pvd_mfa_via_idp"
# ProConnect's amr values: pwd, mail, totp, pop (passkey or agent card), mfa (two factors).
MFA_ACR = {"eidas2", "eidas3"}
MFA_AMR = {"mfa", "totp", "otp", "pop", "hwk"}
LOGOUT_SESSION_KEY = "pvd_proconnect_logout"
NONCES_SESSION_KEY = "pvd_proconnect_nonces"


class ProConnectOAuth2Adapter(OpenIDConnectOAuth2Adapter):
    def complete_login(self, request: HttpRequest, app, token, **kwargs):
        raw_id_token = kwargs["response"].get("id_token")
        if not raw_id_token:
            raise OAuth2Error("ProConnect sent no id_token")
        id_token = self.verified_claims(raw_id_token, required=["iss", "aud", "sub", "exp"])
        expected_nonce = pop_nonce(request, request.GET.get("state", ""))
        if not expected_nonce or not constant_time_compare(
            str(id_token.get("nonce", "")), expected_nonce
        ):
            raise OAuth2Error("id_token nonce does not match the login")
        userinfo = self._fetch_user_info(token.token)
        if userinfo.get("sub") != id_token["sub"]:
            raise OAuth2Error("userinfo and id_token are about different people")
        login = self.get_provider().sociallogin_from_response(
            request, {"userinfo": userinfo, "id_token": id_token}
        )
        # Read back by the account adapter once the person is logged in (see remember_login).
        login.proconnect_logout = {
            "id_token_hint": raw_id_token,
            "end_session_endpoint": self.openid_config.get("end_session_endpoint", ""),
        }
        return login

    def _fetch_user_info(self, access_token: str) -> dict:
        """ProConnect answers with a JWT signed like the id token: plain JSON is refused."""
        with get_adapter().get_requests_session() as session:
            response = session.get(
                self.profile_url, headers={"Authorization": f"Bearer {access_token}"}
            )
            response.raise_for_status()
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != "application/jwt":
            raise OAuth2Error(f"userinfo is {content_type!r}, not a signed application/jwt")
        return self.verified_claims(response.text.strip(), required=["iss", "aud", "sub"])

    def verified_claims(self, token: str, required: list[str]) -> dict:
        """Check a JWT's signature against the provider's keys, its issuer and audience."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm not in SIGNING_ALGORITHMS:
                raise OAuth2Error(f"JWT signed with {algorithm!r}")
            return jwt.decode(
                token,
                key=self._signing_key(token),
                algorithms=[algorithm],
                audience=self.get_provider().app.client_id,
                issuer=self.openid_config["issuer"],
                options={"require": required},
            )
        except jwt.PyJWTError as e:
            raise OAuth2Error(f"Invalid JWT from ProConnect: {e}") from e

    def _signing_key(self, token: str):
        if not hasattr(self, "_jwks"):
            with get_adapter().get_requests_session() as session:
                response = session.get(self.openid_config["jwks_uri"])
                response.raise_for_status()
            self._jwks = jwt.PyJWKSet.from_dict(response.json())
        kid = jwt.get_unverified_header(token).get("kid")
        keys = [key for key in self._jwks.keys if kid is None or key.key_id == kid]
        if len(keys) != 1:
            raise OAuth2Error(f"No single signing key for kid {kid!r}")
        return keys[0].key

    def get_callback_url(self, request: HttpRequest, app) -> str:
        return request.build_absolute_uri(reverse("proconnect_callback"))


class ProConnectProvider(OpenIDConnectProvider):
    """Replaces allauth's OpenID Connect provider class (settings: ``provider_class``)."""

    oauth2_adapter_class = ProConnectOAuth2Adapter
    # allauth adds the routes of `<package>.urls`: the generic OpenID Connect ones, which the
    # root URLconf (portail/urls.py) closes; ProConnect's own two routes are declared there.
    package = "allauth.socialaccount.providers.openid_connect"

    def get_login_url(self, request: HttpRequest, **kwargs) -> str:
        url = reverse("proconnect_login")
        return f"{url}?{urlencode(kwargs)}" if kwargs else url

    # The scopes and acr_values are the service's, not the page's: ignore request parameters.
    def get_scope_from_request(self, request: HttpRequest) -> list[str]:
        return self.get_scope()

    def get_auth_params_from_request(self, request: HttpRequest, action) -> dict:
        return self.get_auth_params()

    def redirect(self, request: HttpRequest, process, next_url=None, data=None, **kwargs):
        nonce = get_random_string(RANDOM_LENGTH)
        auth_params = kwargs.pop("auth_params", None) or self.get_auth_params()
        auth_params["nonce"] = nonce
        state_id = get_random_string(RANDOM_LENGTH)
        remember_nonce(request, state_id, nonce)
        return super().redirect(
            request, process, next_url, data, auth_params=auth_params, state_id=state_id, **kwargs
        )


def remember_nonce(request: HttpRequest, state_id: str, nonce: str) -> None:
    nonces = request.session.get(NONCES_SESSION_KEY, {})
    nonces[state_id] = nonce
    # A few logins started in parallel tabs at most, as allauth keeps its states.
    request.session[NONCES_SESSION_KEY] = dict(list(nonces.items())[-10:])


def pop_nonce(request: HttpRequest, state_id: str) -> str | None:
    nonces = request.session.get(NONCES_SESSION_KEY, {})
    nonce = nonces.pop(state_id, None)
    request.session[NONCES_SESSION_KEY] = nonces
    return nonce


def asserts_mfa(id_token: dict) -> bool:
    """Did the identity provider check a second factor (eIDAS substantial/high, or an amr)?"""
    amr = id_token.get("amr") or []
    if isinstance(amr, str):
        amr = [amr]
    return id_token.get("acr") in MFA_ACR or bool(MFA_AMR.intersection(amr))


def remember_login(request: HttpRequest, sociallogin) -> None:
    """After any login: keep what logout needs, and whether ProConnect checked a second factor."""
    request.session.pop(MFA_SESSION_KEY, None)
    request.session.pop(LOGOUT_SESSION_KEY, None)
    if sociallogin is None or sociallogin.account.provider != PROVIDER_ID:
        return
    logout = sociallogin.state.get("proconnect_logout")
    if logout:
        request.session[LOGOUT_SESSION_KEY] = logout
    if asserts_mfa(sociallogin.account.extra_data.get("id_token", {})):
        request.session[MFA_SESSION_KEY] = True


def end_session_url(request: HttpRequest) -> str | None:
    """Where logging out of the portal sends the browser, to end ProConnect's session too."""
    logout = request.session.get(LOGOUT_SESSION_KEY)
    if not logout or not logout.get("end_session_endpoint"):
        return None
    params = urlencode(
        {
            "id_token_hint": logout["id_token_hint"],
            "state": get_random_string(RANDOM_LENGTH),
            "post_logout_redirect_uri": request.build_absolute_uri(reverse("account_login")),
        }
    )
    endpoint = logout["end_session_endpoint"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{params}"


def provider_origins() -> list[str]:
    """ProConnect's origin(s), from the configured discovery URL: the login button's and the
    logout's forms end in a redirect there, which the CSP's form-action must allow."""
    apps = settings.SOCIALACCOUNT_PROVIDERS.get("openid_connect", {}).get("APPS", [])
    origins = []
    for app in apps:
        url = urlsplit(app.get("settings", {}).get("server_url", ""))
        if url.scheme and url.netloc:
            origins.append(f"{url.scheme}://{url.netloc}")
    return origins


def _adapter(request: HttpRequest) -> ProConnectOAuth2Adapter:
    return ProConnectOAuth2Adapter(request, PROVIDER_ID)


# ProConnect's own login and callback URLs (the callback is the redirect URI registered with
# ProConnect). Without configuration there is no SocialApp: both answer 404.
@login_not_required
def login(request: HttpRequest) -> HttpResponse:
    try:
        return OAuth2LoginView.adapter_view(_adapter(request))(request)
    except SocialApp.DoesNotExist as e:
        raise Http404 from e


@login_not_required
def callback(request: HttpRequest) -> HttpResponse:
    try:
        return OAuth2CallbackView.adapter_view(_adapter(request))(request)
    except SocialApp.DoesNotExist as e:
        raise Http404 from e
