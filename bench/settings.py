"""Production-like settings for the page benchmarks: DEBUG off (no template debug
information), static files without the manifest (no collectstatic needed), plain HTTP."""

import os

os.environ["DEBUG"] = "false"
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-never-used-in-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# The bench users log in without a second factor: the MFA rule (national staff, préfectures)
# would send every page they ask to the MFA form.
os.environ.setdefault("PVD_MFA_ENFORCED", "false")

from pvd.settings import *  # noqa: E402,F403

STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# No collected static files here: WhiteNoise would only warn about the missing folder.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
