"""A fixed cast, built once per session: territories of Indre and Haute-Corrèze, one user per
role (tests/cast.py)."""

import os
import shutil
import socket
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.cache import cache

from communes.models import Beneficiaire
from pvd.models import User
from tests.cast import SANS_ROLE, build_cast, cast_exists, clear_cast


def pytest_configure(config):
    if os.environ.get("PVD_REQUIRE_SERVICES"):
        engine = settings.DATABASES["default"]["ENGINE"]
        if engine != "django.db.backends.postgresql":
            raise pytest.UsageError(f"CI must run on PostgreSQL, not {engine}.")
        if not os.environ.get("REDIS_URL"):
            raise pytest.UsageError("CI must run with REDIS_URL set (real Redis broker).")
        # The Redis-down test starts its own redis-server: in CI it must not skip.
        if not shutil.which("redis-server"):
            raise pytest.UsageError("CI must have redis-server on PATH (Redis-down test).")
        # The two-instance smoke test and the real S3 test skip without their servers.
        if not shutil.which("haproxy"):
            raise pytest.UsageError("CI must have haproxy on PATH (two-instance test).")
        from tests.servers import weed_runs

        if weed_runs():
            raise pytest.UsageError(f"CI must run SeaweedFS (S3 test): {weed_runs()}.")
        # The tests on the official files skip without them: in CI they must run.
        if not settings.REFERENCE_DATA_DIR.is_dir():
            raise pytest.UsageError(
                f"CI must run with the official files in {settings.REFERENCE_DATA_DIR}."
            )


_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in {"127.0.0.1", "::1", "localhost"} and "/" not in host:
        raise RuntimeError(f"Network access blocked in tests: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _block_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (perimeters, unread counts, figures): the database
    rolls back between tests, the cache would not, and a test's first request would pay or not
    depending on the tests run before it."""
    cache.clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The cast (tests/cast.py), built once; each test then runs in a rolled-back transaction."""
    with django_db_blocker.unblock():
        if not cast_exists():
            build_cast()


@pytest.fixture
def territoires(db):
    """The 20 communes of the cast, their EPCI, départements, régions and beneficiaries."""
    # A transactional test (pytest-django runs them last) finds the tables flushed by the
    # previous one: it builds the cast again, and its own flush removes it afterwards.
    if not cast_exists():
        build_cast()


@pytest.fixture
def empty_base(db):
    """No cast at all: for the importers and generators that start from an empty base."""
    clear_cast()


def cast_user(email: str) -> User:
    return User.objects.get(email=email)


@pytest.fixture
def national(territoires):
    return cast_user("anct@test.pvd.fr")


@pytest.fixture
def prefecture_36(territoires):
    return cast_user("prefecture-36@test.pvd.fr")


@pytest.fixture
def prefecture_19(territoires):
    return cast_user("prefecture-19@test.pvd.fr")


@pytest.fixture
def cdp_ussel(territoires):
    return cast_user("cdp-ussel@test.pvd.fr")


@pytest.fixture
def elu_ussel(territoires):
    return cast_user("elu-ussel@test.pvd.fr")


@pytest.fixture
def elu_epci(territoires):
    return cast_user("president-hcc@test.pvd.fr")


@pytest.fixture
def partenaire(territoires):
    return cast_user("partenaire@test.pvd.fr")


@pytest.fixture
def sans_role(territoires):
    return cast_user(SANS_ROLE)


@pytest.fixture
def ussel_la_courtine(territoires):
    return Beneficiaire.objects.get(nom="Ussel – La Courtine")


@pytest.fixture
def le_blanc(territoires):
    return Beneficiaire.objects.get(nom="Le Blanc")


TODAY = date(2026, 3, 16)


@pytest.fixture
def today(time_machine) -> date:
    """Today's date, frozen (the clock still ticks): for tests that compute from today."""
    time_machine.move_to(datetime(2026, 3, 16, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))
    return TODAY


@pytest.fixture
def client_for(client):
    """Log the test client in as a given user."""

    def login(user):
        client.force_login(user)
        return client

    return login


def count_queries(request_page) -> int:
    """SQL queries issued by one call, counted before anything else touches the log."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        response = request_page()
    assert response.status_code == 200
    count = len(context)
    assert count > 0
    return count


@pytest.fixture
def production_caches(settings):
    """Page fragments cached as in production (the test settings turn them off), in
    memory, emptied before and after the test."""
    from django.core.cache import caches

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "template_fragments": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "production-caches",
        },
    }
    caches["default"].clear()
    caches["template_fragments"].clear()
    yield
    caches["default"].clear()
    caches["template_fragments"].clear()
