"""A Redis cache that degrades to « nothing cached » when Redis does not answer.

The cache holds allauth's rate-limit counters and what can be computed again (perimeters,
unread counts, dashboards' figures, plan pages); sessions live in the database: losing it
for a while must not stop anyone from logging in. While Redis is down, reads miss and writes
are dropped. ``add`` reports failure: it is the « only once » guard (a token used once, a
version set once), and an outage must never grant twice what is granted once. One exception:
the lock allauth takes around a rate-limit counter (``allauth:rl:…:lock``) is granted,
since the counter it guards is unreachable anyway; allauth's password rate limits are
therefore off until Redis is back, while the second factor's limits live in the database
(pvd/mfa.py). After a failure the cache is not asked again for ``RETRY_AFTER`` seconds: a
Redis that times out costs one timeout, not one per call of a page.
"""

import logging
import time

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds


def _add_fallback(key, *args) -> bool:
    return ":allauth:rl:" in f":{key}" and key.endswith(":lock")


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

    add = degrade(_add_fallback)(RedisCacheClient.add)
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
