"""Multi-factor authentication: who must use it, and whether this session has."""

from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.login import record_authentication
from allauth.mfa import signals as mfa_signals
from django.conf import settings
from django.dispatch import receiver

from . import policy
from .adapters import is_demo_account

# Set by the ProConnect login when the identity provider asserts it used a second factor.
MFA_VIA_IDP_SESSION_KEY = "pvd_mfa_via_idp"


def mfa_required(user) -> bool:
    """National staff, préfecture staff and anyone with admin access must use MFA.
    The demo accounts are exempt, and only log in at all when DEBUG is on."""
    if not user.is_authenticated:
        return False
    if settings.DEBUG and is_demo_account(user.email):
        return False
    return policy.must_use_mfa(user)


def mfa_done(request) -> bool:
    """This session passed a second factor: the identity provider's, or allauth's
    (TOTP or recovery code at login or reauthentication, or an authenticator just set up)."""
    if request.session.get(MFA_VIA_IDP_SESSION_KEY) is True:
        return True
    records = get_authentication_records(request, request.user)
    return any(record.get("method") == "mfa" for record in records)


@receiver(mfa_signals.authenticator_added)
def _authenticator_added(sender, request, user, authenticator, **kwargs):
    """Whoever just proved they hold the new authenticator has passed MFA in this session."""
    if request is not None and request.user == user:
        record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type)
