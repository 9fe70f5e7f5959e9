"""Fixtures of the dashboards' tests."""

import pytest
from django.core.cache import caches


@pytest.fixture
def one_cache(settings):
    """One cache for everything, as in production (Redis): figures, versions and
    fragments."""
    before = settings.CACHES
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    caches["default"].clear()
    yield caches["default"]
    caches["default"].clear()
    settings.CACHES = before
