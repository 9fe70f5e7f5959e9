"""The posts list's filter form is cached on what it shows (pvd/fragments.py): warm, it
reads no choices; a préfecture never gets another's départements."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from tests.conftest import count_queries

pytestmark = pytest.mark.django_db

LIST = reverse("postes:list")


@pytest.fixture(autouse=True)
def fragment_cache(production_caches):
    """Page fragments cached as in production (tests/conftest.py)."""


def filter_form(response) -> str:
    page = response.content.decode()
    return page[page.index('role="search"') : page.index("</form>", page.index('role="search"'))]


def test_a_warm_list_reads_no_filter_choices(client_for, prefecture_36):
    client = client_for(prefecture_36)
    client.get(LIST)
    cold = count_queries(lambda: client.get(LIST, {"etat": ""}))
    warm = count_queries(lambda: client.get(LIST))
    assert warm < cold
    assert filter_form(client.get(LIST)) == filter_form(client.get(LIST, {"etat": ""}))


def test_the_filter_form_follows_the_readers_perimeter(client_for, prefecture_36, prefecture_19):
    indre = client_for(prefecture_36).get(LIST).content.decode()
    correze = client_for(prefecture_19).get(LIST).content.decode()
    assert 'value="36"' in indre
    assert 'value="36"' not in correze
    assert 'value="19"' in correze


def test_the_years_offered_follow_the_day(client_for, prefecture_36, time_machine):
    time_machine.move_to(datetime(2026, 3, 16, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))
    client = client_for(prefecture_36)
    assert '<option value="2028"' not in client.get(LIST).content.decode()
    time_machine.move_to(datetime(2027, 1, 2, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))
    client = client_for(prefecture_36)  # a new session: the old one ended
    assert '<option value="2028"' in client.get(LIST).content.decode()


def test_a_departement_outside_the_perimeter_is_refused(
    client_for, prefecture_36, poste_le_blanc, poste_ussel
):
    """The région and département options are read only when needed (postes/filters.py
    ``ChampDuPerimetre``): a value is still checked against the reader's perimeter."""
    client = client_for(prefecture_36)
    client.get(LIST)
    page = client.get(LIST, {"departement": "19"}).content.decode()
    assert "fr-select-group--error" in filter_form(client.get(LIST, {"departement": "19"}))
    assert "Aucun poste ne correspond." in page
    assert (
        "Aucun poste ne correspond." not in client.get(LIST, {"departement": "36"}).content.decode()
    )


def test_the_unfiltered_list_builds_no_filter_form_once_cached(client_for, prefecture_36):
    from django_filters.filterset import BaseFilterSet

    client = client_for(prefecture_36)
    client.get(LIST)
    built = []
    original = BaseFilterSet.form.fget

    def form(filterset):
        built.append(filterset)
        return original(filterset)

    BaseFilterSet.form = property(form)
    try:
        client.get(LIST)
    finally:
        BaseFilterSet.form = property(original)
    assert built == []
