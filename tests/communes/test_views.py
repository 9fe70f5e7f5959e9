import pytest
from django.urls import reverse

from communes.models import EPCI, Commune, Departement, Region
from tests.conftest import count_queries
from tests.factories import CommuneFactory

pytestmark = pytest.mark.django_db

INDRE = ["Aigurande", "Buzançais", "Le Blanc", "Valençay"]
CORREZE = ["Ussel", "Neuvic", "Bort-les-Orgues"]


def names(response) -> set[str]:
    return {c.nom for c in response.context["object_list"]}


def test_prefecture_sees_only_its_departement(client_for, prefecture_36):
    response = client_for(prefecture_36).get(reverse("communes:list"))
    assert response.status_code == 200
    found = names(response)
    assert set(INDRE) <= found
    assert not found & set(CORREZE)


def test_search_by_name_ignores_accents_and_hyphens(client_for, prefecture_36):
    response = client_for(prefecture_36).get(reverse("communes:list"), {"q": "buzancais"})
    assert names(response) == {"Buzançais"}
    response = client_for(prefecture_36).get(reverse("communes:list"), {"q": "argenton sur"})
    assert names(response) == {"Argenton-sur-Creuse"}


def test_search_by_insee_code(client_for, national):
    response = client_for(national).get(reverse("communes:list"), {"q": "23067"})
    assert names(response) == {"La Courtine"}


def test_search_outside_perimeter_finds_nothing(client_for, prefecture_36):
    response = client_for(prefecture_36).get(reverse("communes:list"), {"q": "Ussel"})
    assert names(response) == set()
    assert "Aucune commune" in response.content.decode()


def test_filters_by_departement_epci_and_population(client_for, national):
    client = client_for(national)
    response = client.get(reverse("communes:list"), {"departement": "23"})
    assert names(response) == {"La Courtine"}
    response = client.get(reverse("communes:list"), {"epci": "200066744"})
    assert names(response) == {"Ussel", "Neuvic", "Bort-les-Orgues", "La Courtine"}
    response = client.get(reverse("communes:list"), {"epci": "haute-corrèze"})
    assert len(names(response)) == 4
    response = client.get(
        reverse("communes:list"), {"population_min": "5000", "population_max": "8000"}
    )
    assert names(response) == {"Déols", "Le Blanc"}


def test_departement_choices_are_scoped(client_for, prefecture_36):
    response = client_for(prefecture_36).get(reverse("communes:list"), {"departement": "19"})
    # Another département is not a valid choice: the form says so and shows nothing of it.
    assert not names(response) & set(CORREZE)
    assert response.context["filter"].form.errors


def test_bad_population_is_refused_with_a_message(client_for, national):
    response = client_for(national).get(reverse("communes:list"), {"population_min": "beaucoup"})
    assert response.status_code == 200
    assert response.context["filter"].form.errors


def test_sort_by_population(client_for, cdp_ussel):
    response = client_for(cdp_ussel).get(reverse("communes:list"), {"tri": "-population"})
    assert [c.nom for c in response.context["object_list"]] == ["Ussel", "La Courtine"]


def test_list_is_paginated_and_keeps_filters(client_for, national):
    dep = Departement.objects.get(code="36")
    CommuneFactory.create_batch(60, departement=dep, nom="Village test")
    response = client_for(national).get(reverse("communes:list"), {"q": "village"})
    assert response.context["page_obj"].paginator.count == 60
    assert len(response.context["object_list"]) == 50
    page2 = client_for(national).get(reverse("communes:list"), {"q": "village", "page": 2})
    assert len(page2.context["object_list"]) == 10
    assert "q=village" in response.content.decode()


def test_commune_list_query_count_does_not_grow(client_for, national):
    client = client_for(national)
    client.get(reverse("communes:list"))  # warm the session and caches
    small = count_queries(lambda: client.get(reverse("communes:list")))
    dep = Departement.objects.get(code="19")
    CommuneFactory.create_batch(40, departement=dep)
    large = count_queries(lambda: client.get(reverse("communes:list")))
    assert large == small


@pytest.mark.parametrize(
    "who, code",
    [
        ("national", "36018"),
        ("prefecture_36", "36018"),
        ("prefecture_19", "19275"),
        ("cdp_ussel", "23067"),
        ("elu_ussel", "19275"),
        ("elu_epci", "19028"),
        ("partenaire", "36018"),
    ],
)
def test_commune_page_in_perimeter(request, client_for, who, code):
    user = request.getfixturevalue(who)
    response = client_for(user).get(reverse("communes:detail", args=[code]))
    assert response.status_code == 200
    commune = Commune.objects.get(code=code)
    content = response.content.decode()
    assert commune.nom in content
    assert commune.departement.nom in content


@pytest.mark.parametrize(
    "who, code",
    [
        ("prefecture_19", "36018"),
        ("prefecture_36", "19275"),
        ("cdp_ussel", "19148"),
        ("elu_ussel", "23067"),
        ("sans_role", "19275"),
    ],
)
def test_other_territory_gets_404(request, client_for, who, code):
    user = request.getfixturevalue(who)
    assert client_for(user).get(reverse("communes:detail", args=[code])).status_code == 404


def test_commune_page_shows_epci_and_population(client_for, cdp_ussel):
    content = client_for(cdp_ussel).get(reverse("communes:detail", args=["19275"])).content
    content = content.decode()
    assert "CC Haute-Corrèze Communauté" in content
    assert "200066744" in content
    assert any(f"9{space}736" in content for space in ("\u202f", "\xa0", " ", "&nbsp;"))
    # La Courtine is in the same EPCI and in the perimeter; Neuvic is not in it.
    assert "La Courtine" in content
    assert "Neuvic" not in content


class TestForUser:
    def test_prefecture_19(self, prefecture_19):
        assert set(Region.objects.for_user(prefecture_19).values_list("code", flat=True)) == {"75"}
        assert set(Departement.objects.for_user(prefecture_19).values_list("code", flat=True)) == {
            "19"
        }
        assert list(EPCI.objects.for_user(prefecture_19).values_list("siren", flat=True)) == [
            "200066744"
        ]

    def test_cross_departement_chef_de_projet(self, cdp_ussel):
        assert set(Departement.objects.for_user(cdp_ussel).values_list("code", flat=True)) == {
            "19",
            "23",
        }

    def test_national_partner_sees_everything(self, partenaire):
        assert Commune.objects.for_user(partenaire).count() == Commune.objects.count()

    def test_regional_partner(self, territoires):
        from pvd.models import Role
        from tests.factories import user_with_role

        user = user_with_role(
            "region@test.pvd.fr", Role.Kind.PARTENAIRE, organisation="Anah", region_id="75"
        )
        codes = set(Commune.objects.for_user(user).values_list("departement_id", flat=True))
        assert codes == {"19", "23"}

    def test_inactive_user_sees_nothing(self, prefecture_36):
        prefecture_36.is_active = False
        prefecture_36.save()
        from pvd.models import User

        assert not Commune.objects.for_user(User.objects.get(pk=prefecture_36.pk)).exists()
