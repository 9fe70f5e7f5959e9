"""A fixed cast: the demo territories (Indre, Haute-Corrèze) and one user per role."""

import os
import socket

import pytest
from django.conf import settings
from django.core.management import call_command

from pvd.models import Role
from tests.factories import user_with_role


def pytest_configure(config):
    if os.environ.get("PVD_REQUIRE_SERVICES"):
        engine = settings.DATABASES["default"]["ENGINE"]
        if engine != "django.db.backends.postgresql":
            raise pytest.UsageError(f"CI must run on PostgreSQL, not {engine}.")
        if not os.environ.get("REDIS_URL"):
            raise pytest.UsageError("CI must run with REDIS_URL set (real Redis broker).")
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


@pytest.fixture
def territoires(db):
    """The 20 demo communes, their EPCI, départements and régions (DOMAIN.md §11)."""
    from actions.catalogue import seed_financeurs
    from actions.models import Financeur

    call_command("seed_demo", stdout=open(os.devnull, "w"))
    # Transactional tests flush the tables, data migrations included: seed the catalogue again.
    seed_financeurs(Financeur)


@pytest.fixture
def national(territoires):
    return user_with_role("anct@test.pvd.fr", Role.Kind.NATIONAL)


@pytest.fixture
def prefecture_36(territoires):
    return user_with_role("prefecture-36@test.pvd.fr", Role.Kind.PREFECTURE, departements=["36"])


@pytest.fixture
def prefecture_19(territoires):
    return user_with_role("prefecture-19@test.pvd.fr", Role.Kind.PREFECTURE, departements=["19"])


@pytest.fixture
def cdp_ussel(territoires):
    from communes.models import Beneficiaire

    user = user_with_role("cdp-ussel@test.pvd.fr", Role.Kind.CHEF_PROJET)
    user.roles.get().beneficiaires.set([Beneficiaire.objects.get(nom="Ussel – La Courtine")])
    return user


@pytest.fixture
def elu_ussel(territoires):
    return user_with_role("elu-ussel@test.pvd.fr", Role.Kind.ELU, communes=["19275"])


@pytest.fixture
def elu_epci(territoires):
    return user_with_role("president-hcc@test.pvd.fr", Role.Kind.ELU, epci_id="200066744")


@pytest.fixture
def partenaire(territoires):
    return user_with_role(
        "partenaire@test.pvd.fr", Role.Kind.PARTENAIRE, organisation="Banque des Territoires"
    )


@pytest.fixture
def sans_role(territoires):
    from tests.factories import UserFactory

    return UserFactory(email="nouveau@test.pvd.fr")


@pytest.fixture
def ussel_la_courtine(territoires):
    from communes.models import Beneficiaire

    return Beneficiaire.objects.get(nom="Ussel – La Courtine")


@pytest.fixture
def le_blanc(territoires):
    from communes.models import Beneficiaire

    return Beneficiaire.objects.get(nom="Le Blanc")


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
