"""How a partner's system authenticates: its organisation's key, « Authorization: Bearer
pvd_… », and nothing else (no session cookie, hence no CSRF surface)."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from .models import CleApi


class CleApiAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        scheme, _, texte = header.partition(" ")
        if scheme.lower() != "bearer" or not texte.strip():
            raise AuthenticationFailed("En-tête Authorization attendu : « Bearer <clé d'API> ».")
        cle = CleApi.lire(texte.strip())
        if cle is None:
            raise AuthenticationFailed("Clé d'API inconnue.")
        if cle.revoquee_le is not None:
            raise AuthenticationFailed("Cette clé d'API a été révoquée.")
        if not cle.user.is_active:
            raise AuthenticationFailed("Le compte de cette clé d'API est désactivé.")
        cle.enregistrer_utilisation(request.method, request.get_full_path())
        return cle.user, cle

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class AnonymeThrottle(AnonRateThrottle):
    """Requests without a key, per client address (settings read on each request)."""

    def get_rate(self) -> str:
        return settings.PVD_API_THROTTLE_RATES["anonyme"]


class CleThrottle(SimpleRateThrottle):
    """Requests with a key, per key."""

    scope = "cle"

    def get_rate(self) -> str:
        return settings.PVD_API_THROTTLE_RATES["cle"]

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, CleApi):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class CleApiScheme(OpenApiAuthenticationExtension):
    """The key in the OpenAPI document: an HTTP bearer scheme."""

    target_class = CleApiAuthentication
    name = "cleApi"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pvd_<préfixe>_<secret>",
            "description": "La clé d'API de l'organisme, créée par l'équipe nationale.",
        }
