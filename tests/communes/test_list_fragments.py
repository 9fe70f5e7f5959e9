"""The bénéficiaires list's rows and filter form are cached on what they show
(pvd/fragments.py): a change shows at once, a change elsewhere leaves them warm, and no
reader gets another perimeter's fragment."""

import html

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from communes.models import Beneficiaire, Commune
from tests.conftest import count_queries

pytestmark = pytest.mark.django_db

LIST = reverse("communes:beneficiaire-list")


@pytest.fixture(autouse=True)
def fragment_cache(production_caches):
    """Page fragments cached as in production (tests/conftest.py)."""


def text(response) -> str:
    assert response.status_code == 200
    return " ".join(html.unescape(strip_tags(response.content.decode())).split())


def test_a_warm_list_skips_the_filter_choices_and_shows_the_same(client_for, prefecture_36):
    client = client_for(prefecture_36)
    cold = client.get(LIST)
    cold_queries = count_queries(lambda: client.get(LIST, {"statut": ""}))
    warm_queries = count_queries(lambda: client.get(LIST))
    assert warm_queries < cold_queries  # the form's régions and départements are not read
    assert text(client.get(LIST)) == text(cold)


def test_a_change_to_a_listed_beneficiary_or_commune_shows_at_once(
    client_for, prefecture_36, le_blanc
):
    client = client_for(prefecture_36)
    assert "Le Blanc" in text(client.get(LIST))
    Beneficiaire.objects.filter(pk=le_blanc.pk).update(nom="Le Blanc (Indre)")  # no signal
    assert "Le Blanc (Indre)" in text(client.get(LIST))
    membre = le_blanc.membres.filter(actif=True).select_related("commune").first()
    Commune.objects.filter(pk=membre.commune_id).update(population=123456)
    assert "123 456" in text(client.get(LIST)).replace("\u202f", " ").replace("\xa0", " ")


def test_a_change_in_another_territory_leaves_the_list_warm(
    client_for, prefecture_36, ussel_la_courtine
):
    client = client_for(prefecture_36)
    client.get(LIST)
    warm = count_queries(lambda: client.get(LIST))
    ussel_la_courtine.nom = "Ussel – La Courtine (Corrèze)"
    ussel_la_courtine.save()
    assert count_queries(lambda: client.get(LIST)) == warm


def test_no_reader_gets_another_perimeters_rows_or_choices(
    client_for, prefecture_36, prefecture_19
):
    indre = client_for(prefecture_36).get(LIST)
    correze = client_for(prefecture_19).get(LIST)
    assert "Le Blanc" in text(indre)
    assert "Le Blanc" not in text(correze)
    assert "Ussel – La Courtine" in text(correze)
    choices = correze.context["filter"].form.fields["departement"].queryset
    codes = set(choices.values_list("code", flat=True))
    assert "36" not in codes
    assert 'value="36"' not in correze.content.decode()
