import re
from urllib.parse import urlparse

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail
from django.utils import timezone

from communes.models import Beneficiaire
from conventions.models import Convention
from rappels.models import Frequence, Preference
from rappels.sweep import sweep
from tests.rappels.conftest import set_adhesion

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cdp_ussel_notified(cdp_ussel):
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    user = cdp_ussel
    Convention.objects.filter(beneficiaire=ussel, type=Convention.Type.CADRE).delete()
    set_adhesion(ussel, timezone.localdate() - relativedelta(months=12))
    sweep()
    return user


def test_chef_de_projet_reads_notifications_sets_a_weekly_digest_and_unsubscribes(
    login, page, cdp_ussel_notified, csp_violations
):
    (email,) = [m for m in mail.outbox if m.to == ["cdp-ussel@test.pvd.fr"]]
    link = re.search(r"http://\S+/notifications/desabonnement/\S+/", email.body).group(0)
    unsubscribe = urlparse(link).path  # PVD_BASE_URL is not the live server's address

    login("cdp-ussel@test.pvd.fr")
    header_link = page.get_by_role("link", name=re.compile(r"^Notifications"))
    assert re.search(r"1\s*non lue", header_link.text_content())
    header_link.click()
    page.get_by_role("heading", name="Notifications").wait_for()
    assert "la convention-cadre est attendue" in page.content()
    page.get_by_role("button", name=re.compile("^Marquer comme lu")).click()
    page.get_by_role("heading", name="Notifications").wait_for()
    assert (
        "non lue" not in page.get_by_role("link", name=re.compile(r"^Notifications")).inner_text()
    )
    assert page.get_by_role("button", name=re.compile("^Marquer comme lu")).count() == 0

    page.get_by_role("link", name="Préférences de notification").click()
    for categorie in ("Conventions et ORT", "Plans d'action et fiches actions"):
        group = page.get_by_role("group", name=categorie)
        group.get_by_text("Un récapitulatif hebdomadaire (le lundi)").click()
    page.get_by_role("button", name="Enregistrer mes préférences").click()
    page.get_by_text("Vos préférences de notification sont enregistrées.").wait_for()
    assert Preference.objects.get(categorie="conventions").frequence == Frequence.HEBDOMADAIRE

    page.get_by_role("button", name="Se déconnecter").click()
    page.goto(unsubscribe)
    page.get_by_role("button", name="Me désabonner").click()
    page.get_by_text("C’est fait").wait_for()
    assert Preference.objects.get(categorie="conventions").frequence == Frequence.AUCUN
    assert csp_violations == []
