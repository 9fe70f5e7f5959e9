"""Settings of the processes tests/pvd/test_two_instances.py and bench/bench_instances.py start
(gunicorn instances, Celery worker): the shipped settings — Redis cache, sessions in the
database, DEBUG off — with plain HTTP on the loopback and the tests' fast password hasher."""

from pvd.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
# No collectstatic for a test: pages name their static files without the manifest's hashes.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
