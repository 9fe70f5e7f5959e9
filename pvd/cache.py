"""A Redis cache that degrades to « nothing cached » when Redis does not answer.

The cache holds what can be computed again (perimeters, unread counts, dashboards' figures,
plan pages); sessions live in the database: losing it for a while must not stop anyone from
logging in. While Redis is down, reads miss and writes are dropped. ``add`` reports failure:
it is the « only once » guard (a token used once, a version set once), and an outage must
never grant twice what is granted once. allauth's rate-limit counters (``allauth:rl:…``)
never go to Redis: they are kept in the database (pvd/ratelimits.py), so that no limit on
passwords fails open during an outage, as the second factor's (pvd/mfa.py). After a failure
the cache is not asked again for ``RETRY_AFTER`` seconds: a Redis that times out costs one
timeout, not one per call of a page.
"""

import ast
import hashlib
import logging
import time
from functools import cache as once
from pathlib import Path

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds
RATE_LIMITS = "allauth:rl:"  # the keys of allauth's rate-limit counters


def degrade(fallback):
    def decorator(method):
        def wrapper(self, *args, **kwargs):
            if time.monotonic() < self.down_until:
                return fallback(*args) if callable(fallback) else fallback
            try:
                return method(self, *args, **kwargs)
            except RedisError as exc:
                self.down_until = time.monotonic() + RETRY_AFTER
                logger.warning("Cache unavailable, %s skipped: %s", method.__name__, exc)
                return fallback(*args) if callable(fallback) else fallback

        return wrapper

    return decorator


class DegradingRedisCacheClient(RedisCacheClient):
    down_until = 0.0

    def get_client(self, key=None, *, write=False):
        """One redis-py client per connection pool, kept: Django makes a new one on every
        call, and each builds its table of ~170 response callbacks (a third of a get)."""
        pool = self._get_connection_pool(write)
        clients = self.__dict__.setdefault("_clients", {})
        client = clients.get(pool)
        if client is None:
            client = clients[pool] = self._client(connection_pool=pool)
        return client

    add = degrade(False)(RedisCacheClient.add)
    get = degrade(lambda key, default: default)(RedisCacheClient.get)
    set = degrade(None)(RedisCacheClient.set)
    touch = degrade(False)(RedisCacheClient.touch)
    delete = degrade(False)(RedisCacheClient.delete)
    get_many = degrade(lambda keys: {})(RedisCacheClient.get_many)
    has_key = degrade(False)(RedisCacheClient.has_key)
    incr = degrade(lambda key, delta: delta)(RedisCacheClient.incr)
    set_many = degrade(None)(RedisCacheClient.set_many)
    delete_many = degrade(None)(RedisCacheClient.delete_many)
    clear = degrade(False)(RedisCacheClient.clear)


class DegradingRedisCache(RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = DegradingRedisCacheClient

    # allauth's rate limits read and write their counters with these four verbs only.
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        if key.startswith(RATE_LIMITS):
            from . import ratelimits  # its model loads after the cache

            return ratelimits.add(key, value, self.get_backend_timeout(timeout))
        return super().add(key, value, timeout, version)

    def get(self, key, default=None, version=None):
        if key.startswith(RATE_LIMITS):
            from . import ratelimits  # its model loads after the cache

            return ratelimits.get(key, default)
        return super().get(key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        if key.startswith(RATE_LIMITS):
            from . import ratelimits  # its model loads after the cache

            return ratelimits.set(key, value, self.get_backend_timeout(timeout))
        return super().set(key, value, timeout, version)

    def delete(self, key, version=None):
        if key.startswith(RATE_LIMITS):
            from . import ratelimits  # its model loads after the cache

            return ratelimits.delete(key)
        return super().delete(key, version)


# The code a cached page was rendered by ---------------------------------------------------------
# A cache key holds the digest of that code, so that a deployment never serves what the
# previous release rendered: the modules that render the page, every project module they
# import (at the top or inside a function, transitively), the templates and template tags.


def _module_file(root: Path, name: str) -> Path | None:
    path = root.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(root: Path, path: Path, name: str) -> set[str]:
    """The dotted names a module imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(filter(None, [*parent, base]))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name}


def module_files(*modules: str, root: Path | None = None) -> set[Path]:
    """The project's files these modules run: themselves and what they import, transitively."""
    root = Path(root or settings.BASE_DIR)
    files: set[Path] = set()
    pending = list(modules)
    while pending:
        name = pending.pop()
        parts = name.split(".")
        # A package's __init__ runs before its modules.
        for depth in range(1, len(parts) + 1):
            path = _module_file(root, ".".join(parts[:depth]))
            if path is None or path in files:
                continue
            files.add(path)
            pending.extend(_imported_names(root, path, ".".join(parts[:depth])))
    return files


def digest(paths, root: Path) -> str:
    content = hashlib.sha256()
    for path in sorted(paths):
        content.update(path.relative_to(root).as_posix().encode())
        content.update(path.read_bytes())
    return content.hexdigest()[:12]


@once
def code_version(*modules: str) -> str:
    """The digest of the code that renders a cache's content: the modules named, what they
    import, the templates and the template tags."""
    root = Path(settings.BASE_DIR)
    shared = [*root.glob("templates/**/*.html"), *root.glob("*/templatetags/*.py")]
    return digest({*module_files(*modules, root=root), *shared}, root)


# Bulk writes -----------------------------------------------------------------------------------
# A command that writes in bulk, without the models' signals (the importers, the bench
# generator), says so here once it is done: the caches keyed on the data's versions
# (tableaux/cache.py) read this key too, so every territory's fragment is computed again.

DATA_REWRITTEN_KEY = "pvd-data-rewritten"


def data_rewritten() -> None:
    """Every cache keyed on the data's versions is read again (a bulk write just ended)."""
    from django.core.cache import cache

    cache.set(DATA_REWRITTEN_KEY, time.time_ns(), None)
