from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.conf import settings

from .audit import client_ip, record_event

DEMO_DOMAIN = "@demo.pvd.fr"


def is_demo_account(email: str) -> bool:
    """The accounts `seed_demo` creates: usable only when DEBUG is on."""
    return (email or "").strip().lower().endswith(DEMO_DOMAIN)


def _account(login: str):
    from .models import User

    return User.objects.filter(email__iexact=login).first() if login else None


class AccountAdapter(DefaultAccountAdapter):
    """Accounts are opened by ANCT staff: nobody signs up on their own."""

    def is_open_for_signup(self, request) -> bool:
        return False

    def get_client_ip(self, request) -> str:
        return client_ip(request) or "0.0.0.0"

    def pre_authenticate(self, request, **credentials) -> None:
        login = credentials.get("email") or credentials.get("username") or ""
        if is_demo_account(login) and not settings.DEBUG:
            raise forms.ValidationError(
                "Les comptes de démonstration ne peuvent pas se connecter sur cette instance."
            )
        try:
            super().pre_authenticate(request, **credentials)
        except forms.ValidationError:
            record_event(request, "lockout", _account(login), login)
            raise

    def authentication_failed(self, request, **credentials) -> None:
        login = credentials.get("email") or credentials.get("username") or ""
        record_event(request, "login_failed", _account(login), login)
