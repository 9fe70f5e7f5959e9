"""The parts every home shares, cached (tableaux/dashboards.py): the cards of the reader's
roles, the tables of the territories they name, the programme's figures of the national and
partner homes, and the préfecture's map read from its compiled query. A change shows at
once; ``renew_everything`` reads them again, except the programme's parts rendered from the
figures it keeps serving (rendered once per computation of those figures)."""

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from carte import choroplethe
from communes.models import Departement
from pvd.cache import data_rewritten
from pvd.models import Role, User
from tableaux import cache as dashboard_cache
from tableaux import charts
from tableaux.dashboards import role_cards
from tests.actions.test_plan_readmodel import text
from tests.tableaux.test_dashboards import fill

pytestmark = pytest.mark.django_db

HOME = reverse("portail:home")


@pytest.fixture(autouse=True)
def fragment_cache(production_caches):
    """Page fragments cached as in production (tests/conftest.py)."""


@pytest.fixture
def plans(ussel_la_courtine, le_blanc):
    fill(ussel_la_courtine, 3, "1", "111")
    fill(le_blanc, 3, "2", "999")
    return ussel_la_courtine, le_blanc


def home_sql(client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(HOME).status_code == 200
    return [query["sql"] for query in queries]


def page(client) -> str:
    return text(client.get(HOME).content.decode())


@pytest.mark.parametrize("reader", ["elu_ussel", "cdp_ussel", "prefecture_19", "partenaire"])
def test_the_role_cards_are_the_roles_perimeters(request, reader):
    user = User.objects.get(pk=request.getfixturevalue(reader).pk)
    expected = [
        {
            "kind": role.get_kind_display(),
            "fonction": role.fonction,
            "organisation": role.organisation,
            "perimetre": role.perimeter_label,
        }
        for role in user.roles.order_by("pk")
    ]
    assert expected
    assert role_cards(user) == expected


def test_a_warm_home_reads_neither_the_roles_nor_the_territories(client_for, prefecture_19):
    client = client_for(prefecture_19)
    cold = home_sql(client)
    assert any('"pvd_role"' in sql for sql in cold)
    assert any('"nb_communes"' in sql for sql in cold)
    warm = home_sql(client)
    assert not any('"pvd_role"' in sql for sql in warm)
    assert not any('"nb_communes"' in sql for sql in warm)
    assert "Vos départements" in page(client)


def test_a_role_changed_shows_at_once_on_the_home(client_for, cdp_ussel, ussel_la_courtine):
    client = client_for(cdp_ussel)
    assert "Ussel – La Courtine" in page(client)
    role = Role.objects.get(user=cdp_ussel, kind=Role.Kind.CHEF_PROJET)
    role.fonction = "Cheffe de projet Petites villes de demain"
    role.save()
    assert "Cheffe de projet Petites villes de demain" in page(client)
    # A beneficiary renamed: in the card of the role that names it.
    ussel_la_courtine.nom = "Ussel et La Courtine"
    ussel_la_courtine.save()
    assert "Ussel et La Courtine" in page(client)


def test_renew_everything_reads_neither_the_roles_nor_the_territories(
    one_cache, client_for, prefecture_19
):
    """The role cards show the roles and the names of what they name, the territories'
    tables reference data: renewed by their own writes (the perimeter's version, the
    beneficiaries' versions, a bulk write), not by a change of every territory (the funders'
    catalogue, which they do not show). One cache for everything, as in production (the
    préfecture's home reads its fragments with its versions)."""
    client = client_for(prefecture_19)
    home_sql(client)
    dashboard_cache.renew_everything()
    cold = home_sql(client)
    assert not any('"pvd_role"' in sql for sql in cold)
    assert not any('"nb_communes"' in sql for sql in cold)


def test_a_bulk_write_shows_the_territories_new_names(client_for, prefecture_19):
    client = client_for(prefecture_19)
    assert "Corrèze" in page(client)
    Departement.objects.filter(code="19").update(nom="Corrèze renommée")
    data_rewritten()  # as the importers say they wrote
    assert "Corrèze renommée" in page(client)


def test_the_programme_figures_are_rendered_once_per_computation(
    client_for, national, plans, settings, today, monkeypatch
):
    """The national home's figures, kept for every national reader, are rendered once per
    computation: new figures show at once; ``renew_everything`` (the same figures, served
    while computed again) serves the same rendering; a bulk write renders them again."""
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    dashboard_cache.refresh_programme(today)
    drawn = []
    bars = charts.bars
    monkeypatch.setattr(
        charts, "bars", lambda *args, **kwargs: drawn.append(1) or bars(*args, **kwargs)
    )
    client = client_for(national)
    first = page(client)
    assert "6 actions suivies" in first
    assert len(drawn) == 2
    assert [key for key in caches["template_fragments"]._cache if "tableaux-programme" in key]
    assert page(client) == first
    assert len(drawn) == 2  # served from the cache: no chart drawn

    ussel, _ = plans
    fill(ussel, 1, "3", "5")  # one fiche more, shown once the figures are computed again
    dashboard_cache.refresh_programme(today)
    assert "7 actions suivies" in page(client)
    assert len(drawn) == 4

    dashboard_cache.renew_everything()
    page(client)
    assert len(drawn) == 4
    data_rewritten()
    page(client)
    assert len(drawn) == 6


def test_figures_computed_for_one_reader_are_never_cached(client_for, national, plans, settings):
    settings.PROGRAMME_CACHE_TIMEOUT = 0  # no figures kept: computed for each reader
    client = client_for(national)
    assert "6 actions suivies" in page(client)
    assert not [key for key in caches["template_fragments"]._cache if "tableaux-programme" in key]


@pytest.mark.parametrize("reader", ["prefecture_19", "prefecture_36", "national", "cdp_ussel"])
def test_the_maps_compiled_query_reads_what_the_query_reads(request, plans, reader):
    user = request.getfixturevalue(reader)
    for niveau, code in (("perimetre", None), ("france", None), ("region", "75")):
        departements = choroplethe._departements(user, niveau, code)
        assert choroplethe.lignes_preparees(user, niveau, code) == choroplethe.lignes(
            user, departements
        )


@pytest.mark.parametrize(("reader", "cold", "warm"), [("national", 9, 7), ("partenaire", 6, 5)])
def test_the_programme_homes_read_the_cache_in_a_few_round_trips(
    request, one_cache, plans, settings, today, monkeypatch, reader, cold, warm
):
    """The programme's versions, figures and refresh lock in one round trip, the role cards
    and the rendered parts in one more, the parts rendered stored together. Warm: those two,
    what every page reads (the perimeter, the unread reminders), the map's part, and the
    national's governance figures (versions, figures); cold, also the refresh queued once
    and the governance figures stored (the role cards and the parts, rendered from the same
    kept figures, are served as they were). (Before: 18 and 13 for the
    national, 20 and 16 for the partner.)"""
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    dashboard_cache.refresh_programme(today)
    client = request.getfixturevalue("client_for")(request.getfixturevalue(reader))
    page(client)
    calls, depth = [], [0]

    def counted(name, method):
        def call(*args, **kwargs):  # a round trip: the outermost call (locmem's get_many gets)
            if not depth[0]:
                calls.append(name)
            depth[0] += 1
            try:
                return method(*args, **kwargs)
            finally:
                depth[0] -= 1

        return call

    for name in ("get", "get_many", "set", "set_many", "add", "delete"):
        monkeypatch.setattr(one_cache, name, counted(name, getattr(one_cache, name)))
    dashboard_cache.renew_everything()
    calls.clear()
    first = page(client)
    assert len(calls) == cold, calls
    calls.clear()
    assert page(client) == first
    assert len(calls) == warm, calls


def test_the_programme_rows_are_written_as_the_template_filters_write_them():
    from django.contrib.humanize.templatetags.humanize import intcomma
    from django.utils.formats import get_format

    from tableaux.dashboards import entiers

    nombres = [0, 7, 999, 1000, 12358, -4321, 1234567890, None]
    separateur = get_format("THOUSAND_SEPARATOR")
    assert list(entiers(*nombres, separateur=separateur)) == [intcomma(n or 0) for n in nombres]
