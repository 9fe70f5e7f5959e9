"""MFA in the browser, under the Content-Security-Policy: national staff set up an
authenticator app on their first login, then answer its code at the next one."""

import pytest

from pvd.models import Role
from tests.factories import user_with_role
from tests.pvd.test_hardening_accounts import totp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def national_with_mfa_enforced(settings, territoires):
    settings.PVD_MFA_ENFORCED = True
    return user_with_role("anct@test.pvd.fr", Role.Kind.NATIONAL)


def test_national_staff_set_up_totp_then_log_in_with_its_code(
    page, national_with_mfa_enforced, csp_violations
):
    page.goto("/accounts/login/")
    page.get_by_label("Adresse électronique").fill("anct@test.pvd.fr")
    page.get_by_label("Mot de passe", exact=True).fill("pvd-demo")
    page.get_by_role("button", name="Se connecter").click()
    # No page before MFA: allauth first asks for the password again, then the app's code.
    page.wait_for_url("**/accounts/reauthenticate/**")
    assert "exige la double authentification" in page.content()
    page.get_by_label("Mot de passe", exact=True).fill("pvd-demo")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/accounts/2fa/totp/activate/**")
    assert page.locator("main img").first.is_visible()  # the QR code
    secret = page.locator("#authenticator_secret").input_value()
    page.locator("input[name=code]").fill(totp(secret))
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/accounts/2fa/recovery-codes/**")
    page.goto("/journal/")
    assert page.get_by_role("heading", level=1).inner_text() == "Journal"

    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.get_by_label("Adresse électronique").fill("anct@test.pvd.fr")
    page.get_by_label("Mot de passe", exact=True).fill("pvd-demo")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    page.locator("input[name=code]").fill(totp(secret))
    page.get_by_role("button", name="Connexion").click()
    page.wait_for_url("**/")
    assert page.get_by_role("heading", level=1).is_visible()
    assert csp_violations == []
