"""The dashboards' cached fragments are invalidated by a change to any model they read.

Each read-model declares the models it reads (``READS``); tableaux/signals.py connects a new
dashboards' version to exactly those. Here every cached fragment is rendered once on a
miss and once on a hit: the SQL run only on the miss is what the fragment read, and every
table it touches must belong to a declared model (or be listed, with its reason, as one
whose changes need no signal).
"""

import re
from collections import Counter

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pvd.cache import module_files
from tableaux import cache as dashboard_cache
from tableaux.signals import UNWATCHED, WATCHED, connected_senders
from tests.tableaux.test_dashboards import fill

pytestmark = pytest.mark.django_db

TABLE = re.compile(r'(?:FROM|JOIN)\s+"(\w+)"')
LITERAL = re.compile(r"'[^']*'|\b\d+\b")


@pytest.fixture(autouse=True)
def fragment_cache(production_caches):
    """Page fragments cached as in production (tests/conftest.py)."""


def shape(sql: str) -> str:
    """The query without its literals (the session's expiry, today's date…)."""
    return LITERAL.sub("?", sql)


def models_by_table() -> dict[str, str]:
    return {
        model._meta.db_table: model._meta.label
        for model in apps.get_models(include_auto_created=True)
    }


def fragment_models(client, url: str) -> set[str]:
    """The models whose tables the cached parts of the page read (run on a miss only)."""
    assert client.get(url).status_code == 200  # the reader's perimeter, session… cached
    dashboard_cache._renew({dashboard_cache.TOUT})
    with CaptureQueriesContext(connection) as miss:
        client.get(url)
    with CaptureQueriesContext(connection) as hit:
        client.get(url)
    only_on_miss = Counter(shape(q["sql"]) for q in miss) - Counter(shape(q["sql"]) for q in hit)
    assert only_on_miss, f"{url}: nothing was cached, the test proves nothing"
    tables = models_by_table()
    return {tables[name] for sql in only_on_miss for name in TABLE.findall(sql)}


@pytest.fixture
def plans(ussel_la_courtine, le_blanc):
    fill(ussel_la_courtine, 3, "1", "111")
    fill(le_blanc, 3, "2", "999")


@pytest.mark.parametrize(
    ("reader", "url"),
    [
        ("elu_ussel", "portail:home"),
        ("prefecture_19", "portail:home"),
        ("prefecture_19", "carte:carte"),
    ],
)
def test_every_model_a_cached_dashboard_reads_is_watched(request, client_for, plans, reader, url):
    client = client_for(request.getfixturevalue(reader))
    read = fragment_models(client, reverse(url))

    missing = read - set(WATCHED) - set(UNWATCHED)
    assert missing == set(), "declare them in the read-model's READS"


def test_the_signals_are_connected_to_exactly_the_declared_models():
    assert connected_senders() == set(WATCHED)


def test_the_dashboards_key_holds_the_code_of_their_read_models():
    """A fix in a read-model is not served stale after a deploy: its code is in the key."""
    files = {
        path.relative_to(settings.BASE_DIR).as_posix()
        for path in module_files(*dashboard_cache.RENDERED_BY)
    }
    assert {
        "tableaux/views.py",
        "tableaux/lecture.py",
        "carte/choroplethe.py",
        "actions/plan.py",
        "conventions/models.py",
        "postes/models.py",
    } <= files
    assert dashboard_cache.code_version() in dashboard_cache.fragment_key(set())
