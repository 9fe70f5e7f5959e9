"""What several instances share, and what they must not rely on: REDIS_URL is required with
more than one instance, files go to the object store when one is configured, and no « only
once » guard relies on the cache's ``add`` (the database guards them)."""

import re
from pathlib import Path

from tests.pvd.test_settings_and_celery import PRODUCTION, run_manage

ROOT = Path(__file__).resolve().parents[2]
APPS = ["pvd", "communes", "conventions", "postes", "actions", "rappels", "tableaux", "carte",
        "portail"]  # fmt: skip
# cache.add where a second « yes » would grant nothing twice, with the reason.
CACHE_ADD_ALLOWED = {
    # A dashboards' version is a random value: two instances racing keep either, both are new.
    "tableaux/cache.py",
    # Only one refresh of the map's data queued at a time: a second one recomputes the same.
    "carte/precalcul.py",
    # The posts' data version is a random value, and one refresh of the posts list's figures
    # queued at a time: a second one recomputes the same.
    "postes/chiffres.py",
}


def setting(name: str, **env: str) -> str:
    result = run_manage(
        "shell", "-c", f"from django.conf import settings; print(settings.{name})", **env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_more_than_one_instance_requires_redis():
    result = run_manage("check", **PRODUCTION, PVD_INSTANCES="2", REDIS_URL="")
    assert result.returncode != 0
    assert "REDIS_URL est obligatoire avec plusieurs instances" in result.stderr
    assert "REDIS_URL is required" in result.stderr


def test_more_than_one_instance_with_redis_starts_with_the_redis_cache():
    env = {**PRODUCTION, "PVD_INSTANCES": "2", "REDIS_URL": "redis://127.0.0.1:6379/12"}
    assert "pvd.cache.DegradingRedisCache" in setting("CACHES", **env)
    assert setting("SESSION_ENGINE", **env) == "pvd.sessions"  # database sessions


def test_files_go_to_the_local_directory_by_default_and_to_s3_when_a_bucket_is_set():
    assert "FileSystemStorage" in setting("STORAGES['default']['BACKEND']", **PRODUCTION)
    env = {**PRODUCTION, "AWS_STORAGE_BUCKET_NAME": "pvd", "AWS_S3_ENDPOINT_URL": "http://s3:8333"}
    assert setting("STORAGES['default']['BACKEND']", **env) == "storages.backends.s3.S3Storage"
    options = setting("STORAGES['default']['OPTIONS']", **env)
    assert "'bucket_name': 'pvd'" in options and "'endpoint_url': 'http://s3:8333'" in options
    assert "'file_overwrite': False" in options and "'querystring_expire': 60" in options


def test_no_only_once_guard_relies_on_the_cache():
    found = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if re.search(r"\bcache[s]?(\[[^\]]+\])?\.add\(", path.read_text(encoding="utf-8")):
                found.add(path.relative_to(ROOT).as_posix())
    assert found <= CACHE_ADD_ALLOWED, found - CACHE_ADD_ALLOWED


def test_docker_compose_describes_two_replicas_sharing_db_redis_and_the_object_store():
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["beat"]["deploy"]["replicas"] == 1
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["REDIS_URL"] and env["AWS_STORAGE_BUCKET_NAME"] and env["PVD_INSTANCES"] == "2"
        assert not any("media" in volume for volume in services[name].get("volumes", []))
    assert "gunicorn" in services["web"]["command"] and "migrate" not in services["web"]["command"]
    assert {"db", "redis", "s3", "proxy"} <= set(services)
    assert "-admin.ui=false" in services["s3"]["command"][0]
    assert "ports" not in services["s3"]  # reached on the internal network only
    config = services["proxy"]["volumes"][0].split(":")[0]
    haproxy = (ROOT / config).read_text()
    assert "option httpchk GET /healthz" in haproxy and "web:8000 check" in haproxy
