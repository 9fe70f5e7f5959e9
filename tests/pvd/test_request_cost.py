"""What every logged-in page pays before its own work: the session and the user; the perimeter
comes from the cache (tests/pvd/test_perimeter_cache.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", ["cdp_ussel", "prefecture_19", "national"])
def test_a_simple_page_costs_two_queries(request, client_for, who):
    client = client_for(request.getfixturevalue(who))
    url = reverse("portail:plan-du-site")
    client.get(url)  # anything done once per process (content types, caches) is done
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert "Se déconnecter" in response.content.decode()  # the logged-in header was rendered
    assert len(queries) <= 2, "\n".join(q["sql"] for q in queries)


def test_the_redis_cache_keeps_one_client_per_connection_pool(settings):
    """Django builds a redis-py client (and its ~170 response callbacks) on every call; ours
    is kept, and still reads and writes."""
    from pvd.cache import DegradingRedisCache

    if not settings.REDIS_URL:
        pytest.skip("no Redis configured (REDIS_URL)")
    backend = DegradingRedisCache(settings.REDIS_URL, {"KEY_PREFIX": "test-request-cost"})
    client = backend._cache.get_client()
    assert backend._cache.get_client(write=True) is client
    backend.set("key", {"n": 1}, 10)
    assert backend.get("key") == {"n": 1}
    backend.delete("key")
