import os
import subprocess
import sys
from pathlib import Path

import pytest

from pvd.tasks import ping

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    ignored = {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "SECRET_KEY"}
    environment = {k: v for k, v in os.environ.items() if k not in ignored}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-1f9c2e7b5a4d3c8e9f0a",
    "ALLOWED_HOSTS": "pvd.anct.gouv.fr",
}


def test_check_deploy_is_clean_with_production_values():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_must_be_a_real_boolean():
    result = run_manage("check", **{**PRODUCTION, "DEBUG": "peut-être"})
    assert result.returncode != 0
    assert "is not a boolean" in result.stderr


def test_secret_key_is_required_in_production():
    result = run_manage("check", **{**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_ping_task_runs_in_process():
    assert ping.delay("bonjour").get(timeout=5) == "bonjour"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_ping_task_goes_through_a_real_worker_and_redis(settings):
    from celery.contrib.testing.worker import start_worker

    from pvd.celery import app

    app.conf.task_always_eager = False
    try:
        with start_worker(app, perform_ping_check=False, loglevel="WARNING"):
            result = ping.delay("par le courtier Redis")
            assert result.get(timeout=20) == "par le courtier Redis"
            assert app.conf.broker_url.startswith("redis://")
    finally:
        app.conf.task_always_eager = True


@pytest.mark.parametrize(
    "env, tiles, img_src",
    [
        ({}, "https://data.geopf.fr/wmts?", "'self' data: https://data.geopf.fr"),
        ({"MAP_TILE_URL": ""}, "", "'self' data:"),
    ],
)
def test_the_base_map_is_ign_plan_by_default_and_its_host_alone_is_allowed(env, tiles, img_src):
    """Production draws the State's base map (IGN « Plan IGN »), its host allowed in img-src;
    an empty setting (offline) asks nothing from elsewhere."""
    code = (
        "from django.conf import settings as s; "
        "print(s.MAP_TILE_URL); print(s.MAP_TILE_ATTRIBUTION); "
        "print(' '.join(s.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']))"
    )
    env = {**PRODUCTION, "DJANGO_SETTINGS_MODULE": "pvd.settings", **env}
    result = run_manage("shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    url, attribution, sources = result.stdout.strip().splitlines()[-3:]
    assert url.startswith(tiles) and ("PLANIGNV2" in url) == bool(tiles)
    assert attribution == "© IGN – Plan IGN"
    assert sources == img_src


def test_tests_ask_no_tiles_from_the_network():
    from django.conf import settings

    assert settings.MAP_TILE_URL == ""
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] == ["'self'", "data:"]
