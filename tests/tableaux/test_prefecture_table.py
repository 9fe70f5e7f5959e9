"""The préfecture's table computed again (cold): a fixed number of queries to the
database whatever the size, each row rendered only when what it shows changed, and the
deadline, vacancy and unknown-date columns as the database's rules give them."""

from datetime import date

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from communes.models import Beneficiaire
from conventions.echeances import SANS_DATE_ADHESION, with_echeances
from postes.models import Poste
from pvd import db
from tableaux import dashboards, lecture
from tableaux.cache import renew_everything
from tableaux.dashboards import home_context
from tests.actions.test_plan_readmodel import text
from tests.tableaux.test_dashboards import fill

pytestmark = pytest.mark.django_db

TABLE = "tableaux/includes/prefecture.html"


def table_sql(user, query: str = "") -> list[str]:
    """The SQL of the préfecture's table read and rendered (its fragment missing)."""
    web = RequestFactory().get(f"/?{query}")
    web.user = user
    web.user.perimeter  # noqa: B018 - read once, as the middleware does
    page = home_context(web)  # the role cards read, the table's figures not yet
    with CaptureQueriesContext(connection) as context:
        render_to_string(TABLE, page, request=web)
    return [q["sql"] for q in context.captured_queries]


@pytest.mark.parametrize(
    "query,expected",
    # A filter on the status also counts the lauréats without a date, whatever the filters.
    [("", 3), ("departement=19", 3), ("statut=laureat&tri=-part", 4)],
)
def test_the_table_costs_the_same_statements_whatever_its_size(
    prefecture_19, ussel_la_courtine, query, expected
):
    renew_everything()
    small = table_sql(prefecture_19, query)
    fill(ussel_la_courtine, 15, "3", "7")
    renew_everything()
    large = table_sql(prefecture_19, query)
    # The départements and the ids (compiled once per perimeter and filter) were sent with the
    # home's other queries (``home_context``: the role cards read them); the table reads the
    # beneficiaries with their fiches and money (pvd/db.py ``ensemble``: one round trip,
    # every statement counted).
    assert len(small) == len(large) == expected, "\n".join(sql[:150] for sql in large)


def counted(calls: list, name: str, method, depth: list):
    """``method``, each outermost call noted in ``calls`` (a round trip: locmem's
    ``get_many`` calls its ``get``; ``depth`` is shared by the methods counted together)."""

    def call(*args, **kwargs):
        if not depth[0]:
            calls.append(name)
        depth[0] += 1
        try:
            return method(*args, **kwargs)
        finally:
            depth[0] -= 1

    return call


def test_the_prefecture_home_reads_in_a_few_round_trips(
    one_cache, client_for, prefecture_19, ussel_la_courtine, monkeypatch
):
    """Cold (every version renewed), the préfecture's home reads the cache in five round
    trips (the perimeter; the versions with the unread count; the fragments — table,
    governance, map, role cards, territories; the table's rows; the map's drawing) and
    writes what it computed in one per duration; the database in four: the session, the
    user, the queries of every part that missed together (pvd/db.py ``Lot``), the table.
    Whatever the size of the plans. (Before: 19 calls to the cache, 8 round trips to the
    database.)"""
    client = client_for(prefecture_19)
    home = reverse("portail:home")
    client.get(home)
    cache_calls, round_trips = [], []
    depth = [0]
    for name in ("get", "get_many", "set", "set_many", "add", "delete"):
        method = getattr(one_cache, name)
        monkeypatch.setattr(one_cache, name, counted(cache_calls, name, method, depth))
    sent = []  # the statements sent together

    def together(ensemble):
        def call(*requetes, **kwargs):
            sent.extend(requetes)
            return ensemble(*requetes, **kwargs)

        return counted(round_trips, "", call, [0])

    for module in (db, lecture):
        monkeypatch.setattr(module, "ensemble", together(module.ensemble))
    counts = []
    for size in (0, 15):
        fill(ussel_la_courtine, size, f"s{size}", "7")
        renew_everything()
        cache_calls.clear()
        round_trips.clear()
        sent.clear()
        with CaptureQueriesContext(connection) as queries:
            first = text(client.get(home).content.decode())
        alone = len(queries) - len(sent)  # each its own round trip
        counts.append((len(round_trips) + alone, len(queries)))
        # The rows rendered again (Ussel's plan changed) are kept longer: one more write.
        writes = ["set_many"] * (2 if size else 1)
        assert cache_calls == ["get", *["get_many"] * 4, *writes], " ".join(cache_calls)
        assert text(client.get(home).content.decode()) == first
    # The session, the user; the lot (three of governance, départements, ids, map), then
    # the table (fiches, money, beneficiaries). The role cards and the territories' table
    # are not read again: nothing they show is renewed by renew_everything.
    assert counts[0] == counts[1] == (4, 11), counts


def test_a_row_is_rendered_again_only_when_what_it_shows_changed(
    production_caches, client_for, prefecture_19, ussel_la_courtine
):
    client = client_for(prefecture_19)
    url = reverse("portail:home")
    rendered = []

    def count(sender, template, context, **kwargs):
        if template.name == dashboards.LIGNE:
            rendered.append(context["b"].pk)

    template_rendered.connect(count)
    try:
        first = client.get(url).content.decode()
        nb_rows = len(rendered)
        assert nb_rows == Beneficiaire.objects.filter(departement_id="19").count() >= 2
        rendered.clear()
        renew_everything()  # every figure read again, none changed: no row rendered
        assert client.get(url).content.decode().count("<tr>") == first.count("<tr>")
        assert rendered == []
        fill(ussel_la_courtine, 1, "9", "5")  # Ussel's plan changes (signals renew it)
        again = client.get(url).content.decode()
        assert rendered == [ussel_la_courtine.pk]
    finally:
        template_rendered.disconnect(count)
    assert "Ussel" in text(again)


def test_the_rows_give_the_deadline_vacancy_and_unknown_dates(
    prefecture_19, ussel_la_courtine, today
):
    Beneficiaire.objects.filter(pk=ussel_la_courtine.pk).update(
        date_adhesion_saisie=date(2024, 8, 31)
    )
    poste = Poste.objects.create(date_creation=date(2024, 1, 1))
    poste.beneficiaires.add(ussel_la_courtine)
    Poste.objects.filter(pk=poste.pk).update(etat=Poste.Etat.VACANT, vacant_depuis=None)
    web = RequestFactory().get("/")
    web.user = prefecture_19
    rows = {row.pk: row for row in dashboards.prefecture_rows(web.user, web.GET, today)["rows"]}
    ussel = rows[ussel_la_courtine.pk]
    # 18 months after 31 August 2024: the end of February, as PostgreSQL's interval gives it.
    assert ussel.date_adhesion == date(2024, 8, 31)
    assert ussel.date_limite_cadre == date(2026, 2, 28)
    assert ussel.has_vacant and ussel.vacant_depuis is None
    Poste.objects.filter(pk=poste.pk).update(vacant_depuis=date(2025, 6, 1))
    rows = {row.pk: row for row in dashboards.prefecture_rows(web.user, web.GET, today)["rows"]}
    assert rows[ussel_la_courtine.pk].vacant_depuis == date(2025, 6, 1)
    # The unknown-date flag is the database's rule (conventions.echeances.SANS_DATE_ADHESION).
    sans_date = with_echeances(Beneficiaire.objects.filter(pk__in=rows)).filter(SANS_DATE_ADHESION)
    assert {pk for pk, row in rows.items() if row.sans_date_adhesion} == set(
        sans_date.values_list("pk", flat=True)
    )


def test_a_hostile_name_is_escaped_in_a_row_rendered_and_served_from_the_cache(
    production_caches, client_for, prefecture_19, ussel_la_courtine
):
    """A row is rendered by the template (autoescaped) and stored as such: the cached row
    serves the escaped name, never markup."""
    ussel_la_courtine.nom = '<script>alert("x")</script> Ussel'
    ussel_la_courtine.save()
    client = client_for(prefecture_19)
    for _ in range(2):  # rendered, then from the cache
        html = client.get(reverse("portail:home")).content.decode()
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Ussel" in html
        assert "<script>alert" not in html
