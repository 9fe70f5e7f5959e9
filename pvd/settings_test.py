"""Test settings: the real settings, plus speed and isolation."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-1234567890")

from pvd.settings import *  # noqa: E402,F403
from pvd.settings import REDIS_URL  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tasks run eagerly in tests; the tests marked for a real worker switch it off themselves.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = REDIS_URL or "memory://"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # No cached page fragments: the database rolls back between tests, a cache would not.
    # tests/actions/test_plan_cache.py turns them on to test them.
    "template_fragments": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
}
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
PVD_MFA_ENFORCED = False  # tests of MFA itself switch it on (tests/pvd/test_hardening_accounts.py)
PROGRAMME_CACHE_TIMEOUT = 0  # each test reads its own figures (tests/tableaux switch it on)
# No network in tests: no base map, and so no tile host in the CSP.
MAP_TILE_URL = ""
MAP_TILE_ORIGINS = []
CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] = ["'self'", "data:"]  # noqa: F405
