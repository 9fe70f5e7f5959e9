"""The perimeter is kept in the cache between requests, keyed on the user and on a version
that every change of what it reads replaces: a change takes effect at the next request, and
nobody is ever served another user's perimeter."""

import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from communes.models import Beneficiaire, Commune
from pvd.models import Role, User

pytestmark = pytest.mark.django_db


def perimeter_of(user: User):
    """The perimeter as the next request reads it: a fresh user row, through the cache."""
    return User.objects.get(pk=user.pk).perimeter


def commune_page(code: str) -> str:
    return reverse("communes:detail", args=[code])


def test_the_next_request_reads_the_perimeter_from_the_cache(client_for, elu_ussel):
    client = client_for(elu_ussel)
    client.get(reverse("portail:plan-du-site"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("portail:plan-du-site"))
    assert response.status_code == 200
    assert not [q for q in queries if "pvd_role" in q["sql"]]


def test_a_role_given_through_the_access_pages_takes_effect_at_once(
    client_for, national, elu_ussel
):
    elu = client_for(elu_ussel)
    assert elu.get(commune_page("19028")).status_code == 404  # cached: Ussel only
    client_for(national).post(
        reverse("portail:role-create", args=[elu_ussel.pk]),
        {"kind": "elu", "commune_codes": "19028"},
    )
    elu.force_login(elu_ussel)
    assert elu.get(commune_page("19028")).status_code == 200


def test_a_role_removed_through_the_access_pages_takes_effect_at_once(client, national, elu_ussel):
    client.force_login(elu_ussel)
    assert client.get(commune_page("19275")).status_code == 200
    client.force_login(national)
    role = elu_ussel.roles.get()
    assert client.post(reverse("portail:role-delete", args=[role.pk])).status_code == 302
    client.force_login(elu_ussel)
    assert client.get(commune_page("19275")).status_code == 404


def test_each_kind_of_change_gives_a_new_perimeter(elu_ussel, cdp_ussel, ussel_la_courtine):
    role = elu_ussel.roles.get()
    assert perimeter_of(elu_ussel).commune_codes == {"19275"}
    role.communes.add("19028")
    assert perimeter_of(elu_ussel).commune_codes == {"19275", "19028"}
    role.communes.remove("19275")
    assert perimeter_of(elu_ussel).commune_codes == {"19028"}
    role.communes.add("19148")
    assert perimeter_of(elu_ussel).commune_codes == {"19028", "19148"}
    role.communes.clear()
    assert perimeter_of(elu_ussel).is_empty
    role.kind = Role.Kind.NATIONAL
    role.save()
    assert perimeter_of(elu_ussel).national
    role.delete()
    assert perimeter_of(elu_ussel).is_empty

    # The chef de projet's communes are those of their beneficiary, seen from its side too.
    assert perimeter_of(cdp_ussel).commune_codes == {"19275", "23067"}
    membre = ussel_la_courtine.membres.get(commune_id="23067")
    membre.actif = False
    membre.save(update_fields=["actif"])
    assert perimeter_of(cdp_ussel).commune_codes == {"19275"}
    ussel_la_courtine.roles.clear()
    assert perimeter_of(cdp_ussel).is_empty
    ussel_la_courtine.roles.add(cdp_ussel.roles.get())
    assert perimeter_of(cdp_ussel).beneficiaire_ids == {ussel_la_courtine.pk}


def test_a_membership_moved_to_another_beneficiary_leaves_the_first(cdp_ussel, ussel_la_courtine):
    assert "23067" in perimeter_of(cdp_ussel).commune_codes
    autre = Beneficiaire.objects.create(nom="Autre", departement_id="23")
    membre = ussel_la_courtine.membres.get(commune_id="23067")
    membre.beneficiaire = autre
    membre.save()
    assert perimeter_of(cdp_ussel).commune_codes == {"19275"}


def test_a_deleted_commune_leaves_the_perimeters_that_named_it(elu_ussel):
    Commune.objects.create(code="19999", nom="Commune éphémère", departement_id="19")
    elu_ussel.roles.get().communes.add("19999")
    assert perimeter_of(elu_ussel).commune_codes == {"19275", "19999"}
    Commune.objects.filter(code="19999").delete()
    assert perimeter_of(elu_ussel).commune_codes == {"19275"}


def test_an_account_saved_from_an_old_object_keeps_the_new_version(elu_ussel):
    old = User.objects.get(pk=elu_ussel.pk)
    assert old.perimeter.commune_codes == {"19275"}
    elu_ussel.roles.get().communes.add("19028")
    old.first_name = "Renommée"
    old.save()  # e.g. the account page, opened before the change
    assert perimeter_of(elu_ussel).commune_codes == {"19275", "19028"}
    partial = User.objects.only("email").get(pk=elu_ussel.pk)
    partial.email = "elu-ussel@test.pvd.fr"
    with CaptureQueriesContext(connection) as queries:
        partial.save()
    assert len(queries) == 2  # the audit trail's read and the update: no deferred field read
    assert User.objects.get(pk=elu_ussel.pk).first_name == "Renommée"


def test_a_role_changed_on_a_loaded_user_is_seen_by_that_object(sans_role):
    assert sans_role.perimeter.is_empty
    Role.objects.create(user=sans_role, kind=Role.Kind.NATIONAL)
    assert sans_role.perimeter.national


def test_no_user_is_served_another_users_perimeter(elu_ussel, elu_epci):
    same = uuid.uuid4()
    User.objects.filter(pk__in=[elu_ussel.pk, elu_epci.pk]).update(perimeter_version=same)
    assert perimeter_of(elu_ussel).commune_codes == {"19275"}
    assert perimeter_of(elu_epci).epci_sirens == {"200066744"}
    assert perimeter_of(elu_ussel).epci_sirens == set()


def test_an_inactive_account_has_no_perimeter_even_when_cached(elu_ussel):
    assert not perimeter_of(elu_ussel).is_empty
    User.objects.filter(pk=elu_ussel.pk).update(is_active=False)
    assert perimeter_of(elu_ussel).is_empty


def test_without_a_cache_the_perimeter_is_computed(monkeypatch, elu_ussel):
    monkeypatch.setattr(cache, "get", lambda key, default=None: default)
    monkeypatch.setattr(cache, "set", lambda *args, **kwargs: None)
    assert perimeter_of(elu_ussel).commune_codes == {"19275"}
