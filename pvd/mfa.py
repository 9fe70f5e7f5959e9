"""Multi-factor authentication: who must use it, whether this session has, and the limits
on second-factor codes.

The limits live in the database, not in the cache (which answers « nothing » while Redis is
down): a TOTP code is accepted once (``CodeMfaUtilise``, unique per account and code, kept
while the code could still be valid), and ``MAX_WRONG_CODES`` wrong codes within
``WRONG_CODES_WINDOW`` refuse every code until the window ends (``EchecsMfa``, the
account's row locked while a code is checked). allauth's login and reauthentication forms
(``MFA_FORMS`` in settings) check codes here.
"""

import copy
from datetime import timedelta

from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.login import record_authentication
from allauth.core.internal.cryptokit import normalize_user_code
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa import signals as mfa_signals
from allauth.mfa.adapter import get_adapter
from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import validate_totp_code
from allauth.mfa.utils import decrypt
from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from . import policy
from .adapters import is_demo_account
from .bounds import texte_une_ligne
from .models import CodeMfaUtilise, EchecsMfa

# As allauth's per-account limit on wrong passwords (ACCOUNT_RATE_LIMITS « login_failed »).
MAX_WRONG_CODES = 5
WRONG_CODES_WINDOW = timedelta(minutes=5)
TOO_MANY = "Trop de codes erronés : réessayez dans quelques minutes."

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


def owes_second_factor(request) -> bool:
    """A logged-in user who must use MFA (when it is enforced) and has not in this session."""
    user = request.user
    return (
        settings.PVD_MFA_ENFORCED
        and user.is_authenticated
        and mfa_required(user)
        and not mfa_done(request)
    )


@receiver(mfa_signals.authenticator_added)
def _authenticator_added(sender, request, user, authenticator, **kwargs):
    """Whoever just proved they hold the new authenticator has passed MFA in this session."""
    if request is not None and request.user == user:
        record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type)


def _totp_code_valid_once(authenticator: Authenticator, code: str) -> bool:
    """A right code, never used before by this account while it could be valid."""
    if not validate_totp_code(decrypt(authenticator.data["secret"]), code):
        return False
    now = timezone.now()
    # A code stays valid for every 30-second step of the tolerance window.
    lifetime = timedelta(seconds=mfa_settings.TOTP_PERIOD * (2 * mfa_settings.TOTP_TOLERANCE + 1))
    CodeMfaUtilise.objects.filter(user_id=authenticator.user_id, expire_le__lt=now).delete()
    _, created = CodeMfaUtilise.objects.get_or_create(
        user_id=authenticator.user_id,
        code=normalize_user_code(code),
        defaults={"expire_le": now + lifetime},
    )
    return created


def _matching_authenticator(user, code: str) -> tuple[Authenticator | None, Authenticator | None]:
    """(the authenticator the code is right for, the one a failure is reported on)."""
    main = None
    for authenticator in Authenticator.objects.filter(user=user).exclude(
        type=Authenticator.Type.WEBAUTHN
    ):
        if not main or authenticator.type == Authenticator.Type.TOTP:
            main = authenticator
        if authenticator.type == Authenticator.Type.TOTP:
            valid = _totp_code_valid_once(authenticator, code)
        else:  # recovery codes: allauth marks each used one on the row itself
            valid = authenticator.wrap().validate_code(code)
        if valid:
            return authenticator, main
    return None, main


class CodeLimitsMixin:
    """allauth's code check, with reuse and attempt limits held in the database."""

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        now = timezone.now()
        with transaction.atomic():
            counter, _ = EchecsMfa.objects.select_for_update().get_or_create(
                user=self.user, defaults={"depuis": now}
            )
            if counter.depuis < now - WRONG_CODES_WINDOW:
                counter.echecs, counter.depuis = 0, now
            if counter.echecs >= MAX_WRONG_CODES:
                raise forms.ValidationError(TOO_MANY, code="too_many_attempts")
            authenticator, main = _matching_authenticator(self.user, code)
            counter.echecs = 0 if authenticator else counter.echecs + 1
            counter.save(update_fields=["echecs", "depuis"])
        if authenticator is None:
            if main:
                self._emit_authentication_failed(main)
            raise get_adapter().validation_error("incorrect_code")
        authenticator.user = self.user
        self.authenticator = authenticator
        return code


class MfaAuthenticateForm(CodeLimitsMixin, AuthenticateForm):
    pass


class MfaReauthenticateForm(CodeLimitsMixin, ReauthenticateForm):
    pass


# A code is a short line (6 digits, or a recovery code): bounded like every typed text.
CODE_MAX = 64
for _form in (MfaAuthenticateForm, MfaReauthenticateForm):
    _field = copy.deepcopy(_form.base_fields["code"])
    _field.max_length = CODE_MAX
    _field.validators = [*_field.validators, MaxLengthValidator(CODE_MAX), texte_une_ligne]
    _form.base_fields["code"] = _field
