import re
import time
from urllib.parse import urlencode

from auditlog.middleware import AuditlogMiddleware
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import BadRequest
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.middleware.gzip import GZipMiddleware
from django.shortcuts import resolve_url
from django.urls import reverse

from . import proconnect
from .adapters import is_demo_account
from .audit import client_ip
from .mfa import owes_second_factor

# C0 control characters but tab: no query parameter of the portal may carry one.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class HtmxLoginRedirectMiddleware:
    """An htmx request whose session expired reloads the page on the login form,
    instead of pasting the login page into a fragment of the current one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        login_url = resolve_url(settings.LOGIN_URL)
        if (
            request.headers.get("HX-Request") == "true"
            and response.status_code == 302
            and response.get("Location", "").startswith(login_url)
        ):
            redirect = HttpResponse(status=204)
            redirect["HX-Redirect"] = response["Location"]
            return redirect
        return response


class SecurityHeadersMiddleware:
    """Permissions-Policy on every response (the CSP comes from django-csp).

    When ProConnect is configured, its origin joins the CSP's form-action: the login button
    and the logout are forms whose answer redirects there, and browsers apply form-action to
    that redirect too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        origins = proconnect.provider_origins()
        if origins:
            response._csp_update = {"form-action": origins}
        return response


class MalformedUrlMiddleware:
    """A path with a NUL byte cannot name anything (PostgreSQL refuses it in a query): 404.
    A query parameter with one (or another control character) is no value any filter knows:
    400, in French, before a view hands it to the database."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "\x00" in request.path_info:
            raise Http404("Adresse invalide.")
        if any(
            CONTROL.search(text) for key, values in request.GET.lists() for text in (key, *values)
        ):
            raise BadRequest("Un paramètre de l'adresse contient un caractère invalide.")
        return self.get_response(request)


class TrustedIpAuditlogMiddleware(AuditlogMiddleware):
    """django-auditlog, with the client IP from pvd.audit.client_ip (TRUSTED_PROXY_COUNT)
    instead of the first X-Forwarded-For entry, which anyone can forge."""

    @staticmethod
    def _get_remote_addr(request):
        return client_ip(request)

    @staticmethod
    def _get_remote_port(request):
        return None


SESSION_STARTED_KEY = "pvd_session_started"
SESSION_SEEN_KEY = "pvd_session_seen"
SESSION_RENEW_EVERY = 5 * 60


def stamp_session(sender, request, user, **kwargs) -> None:
    """At login: when the session started (12 h at most) and was last renewed."""
    now = int(time.time())
    request.session[SESSION_STARTED_KEY] = now
    request.session[SESSION_SEEN_KEY] = now


class SessionLifetimeMiddleware:
    """A session ends 12 hours after login, and after 2 hours without a request
    (SESSION_COOKIE_AGE, renewed at most every 5 minutes to spare a write per request).
    A demo account is logged out when DEBUG is off."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = int(time.time())
            started = request.session.get(SESSION_STARTED_KEY, 0)
            seen = request.session.get(SESSION_SEEN_KEY, 0)
            expired = (
                now - started > settings.SESSION_MAX_LIFETIME
                or now - seen > settings.SESSION_COOKIE_AGE
                or (is_demo_account(request.user.email) and not settings.DEBUG)
            )
            if expired:
                logout(request)
                return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))
            if now - seen > SESSION_RENEW_EVERY:
                request.session[SESSION_SEEN_KEY] = now
        return self.get_response(request)


# Paths a user who still owes MFA may reach: login, logout, MFA setup and challenge, password.
MFA_OPEN_PREFIXES = ("/accounts/", "/static/", "/healthz", "/readyz")


class MfaRequiredMiddleware:
    """Users for whom pvd.mfa.mfa_required holds reach no page before passing MFA: set up an
    authenticator app first, or answer its challenge when their session has not."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if not request.path.startswith(MFA_OPEN_PREFIXES) and owes_second_factor(request):
            from allauth.mfa.models import Authenticator

            has_totp = Authenticator.objects.filter(
                user=user, type=Authenticator.Type.TOTP
            ).exists()
            target = "mfa_reauthenticate" if has_totp else "mfa_activate_totp"
            if not has_totp:
                messages.info(
                    request,
                    "Votre rôle exige la double authentification : configurez une application "
                    "d'authentification (TOTP) pour accéder au portail.",
                )
            url = f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}"
            if request.headers.get("HX-Request") == "true":
                response = HttpResponse(status=204)
                response["HX-Redirect"] = url
                return response
            return HttpResponseRedirect(url)
        return self.get_response(request)


class GZipTextMiddleware(GZipMiddleware):
    """Django's GZipMiddleware for text only (pages, JSON, CSV, SVG): the downloads that are
    compressed already (PDF, XLSX, ZIP, images) go as they are, with their length, instead of
    costing the worker a second compression for nothing."""

    TEXT = (
        "text/",
        "application/json",
        "application/geo+json",
        "application/problem+json",
        "application/javascript",
        "application/xml",
        "image/svg+xml",
    )

    def process_response(self, request, response):
        if not response.get("Content-Type", "").startswith(self.TEXT):
            return response
        return super().process_response(request, response)
