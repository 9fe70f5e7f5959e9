import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers.base import AuthProcess
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.shortcuts import render
from django.utils.crypto import get_random_string

from . import proconnect
from .audit import client_ip, record_event

logger = logging.getLogger(__name__)

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

    def post_login(self, request, user, **kwargs):
        signal_kwargs = kwargs.get("signal_kwargs") or {}
        proconnect.remember_login(request, signal_kwargs.get("sociallogin"))
        return super().post_login(request, user, **kwargs)

    def get_logout_redirect_url(self, request) -> str:
        return proconnect.end_session_url(request) or super().get_logout_redirect_url(request)

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


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """ProConnect logs in only a person whose account ANCT has opened.

    The first time, the account is found by the e-mail address ProConnect vouches for, and
    the ProConnect subject (`sub`) is attached to it; afterwards only that subject opens it,
    so a later e-mail change at the provider hands the account to nobody else.
    """

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return False

    def generate_state_param(self, state: dict) -> str:
        return get_random_string(proconnect.RANDOM_LENGTH)

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ) -> None:
        # The page stays vague on purpose; the log says what failed (signature, nonce…).
        logger.warning("ProConnect login failed (%s): %s", error, exception)

    def pre_social_login(self, request, sociallogin) -> None:
        email = (sociallogin.account.extra_data.get("userinfo") or {}).get("email") or ""
        if sociallogin.state.get("process") != AuthProcess.LOGIN:
            # No attaching an identity to an account from its own pages: ANCT decides.
            raise ImmediateHttpResponse(refused(request, email, "connect"))
        if not sociallogin.is_existing:
            user = (
                get_user_model().objects.filter(email__iexact=email, is_active=True).first()
                if email
                else None
            )
            if user is None:
                raise ImmediateHttpResponse(refused(request, email, "unknown"))
            if SocialAccount.objects.filter(
                user=user, provider=sociallogin.account.provider
            ).exists():
                raise ImmediateHttpResponse(refused(request, email, "other_identity"))
            sociallogin.connect(request, user)
        sociallogin.state["proconnect_logout"] = getattr(sociallogin, "proconnect_logout", None)


def refused(request, email: str, reason: str):
    return render(
        request,
        "socialaccount/proconnect_refused.html",
        {"email": email, "reason": reason},
        status=403,
    )
