"""The posts list's counts, totals and rows kept in the cache (postes/chiffres.py): on the
posts' ids and data version, so a write shows at once; a long national list served stale
while refreshed says when its figures were computed."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from postes import chiffres, financement
from postes.models import CofinancementAnnee, LigneCofinancement, Poste
from tableaux.cache import renew_everything
from tests.conftest import count_queries
from tests.postes.conftest import make_poste, occupe

pytestmark = pytest.mark.django_db

URL = reverse("postes:list") + "?annee=2024"


@pytest.fixture(autouse=True)
def fresh_cache(production_caches):
    """An empty cache for each test (the default one is shared by the test session)."""


def ligne(poste, montant: int) -> LigneCofinancement:
    annee, _ = CofinancementAnnee.objects.get_or_create(
        poste=poste, annee=2024, defaults={"cout_charge": 60000}
    )
    return LigneCofinancement.objects.create(annee=annee, financeur="anct", montant_notifie=montant)


def notifie(response) -> list[Decimal]:
    return [total.notifie for total in response.context["totaux"]]


def test_a_warm_list_reads_only_its_posts_ids(client_for, national, poste_ussel, poste_le_blanc):
    ligne(poste_ussel, 30000)
    client = client_for(national)
    client.get(URL)  # the reader's session and perimeter, read once
    renew_everything()
    # Session, user, the ids; then the page's rows, counts and totals (one round trip).
    assert count_queries(lambda: client.get(URL)) == 6
    assert count_queries(lambda: client.get(URL)) == 3
    renew_everything()  # cold again
    assert count_queries(lambda: client.get(URL)) == 6


def test_a_write_shows_at_once(client_for, national, prefecture_19, poste_ussel):
    line = ligne(poste_ussel, 30000)
    client = client_for(prefecture_19)
    assert notifie(client.get(URL)) == [30000]
    line.montant_notifie = 45000
    line.save()
    assert notifie(client.get(URL)) == [45000]
    poste_ussel.etat = Poste.Etat.VACANT
    poste_ussel.vacant_depuis = date(2024, 1, 1)
    poste_ussel.save()
    response = client.get(URL)
    assert (response.context["compteurs"].pourvus, response.context["compteurs"].vacants) == (0, 1)
    assert response.context["rows"][0]["etat"] == Poste.Etat.VACANT
    occupe(poste_ussel, date(2024, 2, 1), prenom="Alix", nom="Durand")
    assert "Alix Durand" in client.get(URL).content.decode()
    line.delete()
    assert notifie(client.get(URL)) == []


def test_a_prefecture_gets_the_figures_of_its_own_posts(
    client_for, national, prefecture_19, prefecture_36, poste_ussel, poste_le_blanc
):
    ligne(poste_ussel, 30000)
    ligne(poste_le_blanc, 12000)
    assert notifie(client_for(national).get(URL)) == [12000, 30000]
    assert notifie(client_for(prefecture_19).get(URL)) == [30000]
    assert notifie(client_for(prefecture_36).get(URL)) == [12000]
    assert client_for(prefecture_36).get(URL).context["compteurs"].total == 1


def test_a_long_national_list_is_served_stale_while_refreshed(
    client_for,
    national,
    prefecture_19,
    poste_ussel,
    poste_le_blanc,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    monkeypatch.setattr(financement, "PEU_DE_POSTES", 1)  # two posts make a long list here
    line = ligne(poste_ussel, 30000)
    client = client_for(national)
    first = client.get(URL)
    assert notifie(first) == [30000]
    assert "Compteurs et totaux au" not in first.content.decode()
    line.montant_notifie = 45000
    line.save()
    with django_capture_on_commit_callbacks() as refreshes:
        stale = client.get(URL)
    assert notifie(stale) == [30000]
    assert "Compteurs et totaux au" in stale.content.decode()
    # The rows are never stale.
    assert [row["notifie"] for row in stale.context["rows"] if row["notifie"]] == [45000]
    # A préfecture's list is short: computed again, never stale.
    assert notifie(client_for(prefecture_19).get(URL)) == [45000]
    assert refreshes  # one refresh queued
    for refresh in refreshes:
        refresh()  # the queued refresh (the worker)
    fresh = client.get(URL)
    assert notifie(fresh) == [45000]
    assert "Compteurs et totaux au" not in fresh.content.decode()


def test_beat_computes_the_whole_countrys_figures_ahead(
    client_for, national, poste_ussel, poste_le_blanc, settings
):
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    ligne(poste_ussel, 30000)
    client = client_for(national)
    client.get(reverse("postes:list"))
    renew_everything()
    cold = count_queries(lambda: client.get(reverse("postes:list")))
    renew_everything()
    assert chiffres.precompute() is True
    assert chiffres.precompute() is False  # current: not computed again
    # The rows only (the figures were computed ahead).
    assert count_queries(lambda: client.get(reverse("postes:list"))) == cold - 2


def test_a_new_post_changes_the_ids_and_so_the_figures(client_for, national, le_blanc, regles):
    client = client_for(national)
    assert client.get(URL).context["compteurs"].total == 0
    make_poste(le_blanc)
    assert client.get(URL).context["compteurs"].total == 1
