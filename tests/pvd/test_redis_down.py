"""Redis down: pages and login still work, PDFs and exports fail at once and say why.

The test runs its own redis-server (port 9601), points the cache and the Celery broker at
it, checks that both use it, stops it, and uses the portal as people do. « At once » is
asserted on the mechanism, not on a stopwatch: after its first failure the cache client does
not ask Redis again (one refused connection, not one per call of a page), and publishing a
job makes a bounded number of connection attempts (no retry loop).
"""

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager

import pytest
import redis
from django.core.cache import cache
from django.urls import reverse
from redis.connection import AbstractConnection

from actions.models import ExportPlan
from conventions.models import Convention, DocumentConvention
from pvd.cache import DegradingRedisCacheClient
from pvd.jobs import UNAVAILABLE, Job

# What a user may wait for an answer, in seconds: the configured timeouts stay within it.
FAST = 2.0
PORT = 9601
URL = f"redis://127.0.0.1:{PORT}/0"
# Connection attempts one call may make to a stopped Redis (redis-py's own retry, no loop).
CALL_ATTEMPTS = 2

pytestmark = [
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed"),
    # Real commits: the task is queued by the on_commit hook, as in production.
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def own_redis(tmp_path):
    server = subprocess.Popen(
        ["redis-server", "--port", str(PORT), "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(URL)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)
    yield server, client
    server.kill()
    server.wait()


@contextmanager
def broker(url: str):
    """Point the Celery app at this Redis (the settings are read once, at start)."""
    from pvd.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager, app._pool, app.amqp._producer_pool)
    app.conf.broker_url, app.conf.task_always_eager = url, False
    app._pool = app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager, app._pool, app.amqp._producer_pool = saved


@pytest.fixture
def app_on_own_redis(own_redis, settings):
    settings.REDIS_URL = URL
    settings.CACHES = {
        "default": {
            "BACKEND": "pvd.cache.DegradingRedisCache",
            "LOCATION": URL,
            "OPTIONS": settings.REDIS_CACHE_OPTIONS,  # the shipped timeouts
        }
    }
    with broker(URL):
        yield own_redis


@pytest.fixture
def redis_calls(monkeypatch):
    """What the portal asks the stopped Redis: cache operations and connection attempts."""
    calls = {"cache": 0, "connect": 0}
    get_client = DegradingRedisCacheClient.get_client
    connect = AbstractConnection.connect

    def counting_get_client(self, *args, **kwargs):
        calls["cache"] += 1
        return get_client(self, *args, **kwargs)

    def counting_connect(self, *args, **kwargs):
        if getattr(self, "port", None) == PORT:
            calls["connect"] += 1
        return connect(self, *args, **kwargs)

    monkeypatch.setattr(DegradingRedisCacheClient, "get_client", counting_get_client)
    monkeypatch.setattr(AbstractConnection, "connect", counting_connect)
    # The whole test stands within one retry period: nothing may ask the cache again.
    monkeypatch.setattr("pvd.cache.RETRY_AFTER", 3600)
    return calls


def login(client, email: str):
    return client.post(
        reverse("account_login"), {"login": email, "password": "pvd-demo"}, follow=True
    )


def test_with_redis_down_pages_and_login_work_and_jobs_fail_at_once(
    client, app_on_own_redis, redis_calls, cdp_ussel, national, ussel_la_courtine
):
    server, own = app_on_own_redis
    convention = Convention.objects.create(
        beneficiaire=ussel_la_courtine, type=Convention.Type.CADRE, titre="Convention-cadre"
    )
    generate = reverse("conventions:generate", args=[convention.pk])

    # Redis up: the cache and the broker use this server (nothing reads the queue).
    cache.set("sonde", "ok")
    assert own.get(":1:sonde") is not None
    assert login(client, "cdp-ussel@test.pvd.fr").status_code == 200
    client.post(generate)
    assert own.llen("celery") == 1
    queued = DocumentConvention.objects.get(version=1)
    assert queued.statut == Job.Statut.EN_COURS

    server.kill()
    server.wait()
    client.logout()
    redis_calls.update(cache=0, connect=0)

    # Public pages and the login form still answer, and login works.
    for name in ("account_login", "portail:accessibilite"):
        assert client.get(reverse(name)).status_code == 200
    response = login(client, "cdp-ussel@test.pvd.fr")
    assert response.status_code == 200
    assert response.wsgi_request.user == cdp_ussel
    response = client.get(reverse("conventions:detail", args=[convention.pk]))
    assert response.status_code == 200
    # The cache asked Redis once, was refused, and has not asked since: pages cost no wait.
    assert redis_calls["cache"] == 1
    assert 1 <= redis_calls["connect"] <= CALL_ATTEMPTS

    # A PDF: a clear message at once, and no version left « en cours » without a task.
    before = redis_calls["connect"]
    response = client.post(generate, follow=True)
    assert response.status_code == 200
    assert UNAVAILABLE in response.content.decode()
    assert redis_calls["cache"] == 1
    assert redis_calls["connect"] - before <= CALL_ATTEMPTS
    failed = DocumentConvention.objects.get(version=2)
    assert failed.statut == Job.Statut.ECHEC and failed.erreur == UNAVAILABLE

    # An export, by national staff.
    client.logout()
    assert login(client, "anct@test.pvd.fr").status_code == 200
    before = redis_calls["connect"]
    response = client.post(reverse("actions:export-national"), follow=True)
    assert response.status_code == 200
    assert redis_calls["connect"] - before <= CALL_ATTEMPTS
    assert UNAVAILABLE in response.content.decode()
    export = ExportPlan.objects.get()
    assert export.statut == Job.Statut.ECHEC and export.erreur == UNAVAILABLE

    # Readiness says what is down.
    response = client.get(reverse("portail:readyz"))
    assert response.status_code == 503
    assert response.json()["redis"] == "indisponible"
    assert response.json()["database"] == "ok"


def test_a_frozen_redis_costs_a_job_request_one_bounded_wait_per_connection(
    client, app_on_own_redis, settings, cdp_ussel, ussel_la_courtine
):
    """Redis accepts connections and never answers (SIGSTOP): each wait is bounded by a socket
    timeout, the cache then leaves Redis alone, and the publish is tried once."""
    from pvd.celery import app

    server, own = app_on_own_redis
    # The bounds: one cache wait and one publish wait, each timed out, none repeated.
    assert settings.REDIS_CACHE_OPTIONS == {
        "socket_connect_timeout": settings.REDIS_TIMEOUT,
        "socket_timeout": settings.REDIS_TIMEOUT,
    }
    options = app.conf.broker_transport_options
    assert options["socket_timeout"] == options["socket_connect_timeout"] == settings.BROKER_TIMEOUT
    assert options["max_retries"] == 0 and options["retry_on_timeout"] is False
    assert app.conf.broker_connection_timeout == settings.BROKER_TIMEOUT
    assert settings.REDIS_TIMEOUT + settings.BROKER_TIMEOUT <= FAST
    convention = Convention.objects.create(
        beneficiaire=ussel_la_courtine, type=Convention.Type.CADRE, titre="Convention-cadre"
    )
    assert login(client, "cdp-ussel@test.pvd.fr").status_code == 200

    os.kill(server.pid, signal.SIGSTOP)
    try:
        response = client.post(reverse("conventions:generate", args=[convention.pk]), follow=True)
    finally:
        os.kill(server.pid, signal.SIGCONT)

    assert response.status_code == 200 and UNAVAILABLE in response.content.decode()
    failed = DocumentConvention.objects.get(convention=convention)
    assert failed.statut == Job.Statut.ECHEC and failed.erreur == UNAVAILABLE
    assert own.llen("celery") == 0  # nothing was queued
