"""The header's unread count, kept in the cache: a plain page stays at three queries.

The sweep (new reminders) and the « marquer comme lu » actions forget the cached counts they
change; a short lifetime bounds any other drift. Without a cache (Redis down) it is counted.
"""

from django.core.cache import cache

from .models import Rappel

TTL = 300  # seconds


def _key(user_id: int) -> str:
    return f"rappels:non-lues:{user_id}"


def unread_key(user) -> str:
    """The cache key of the user's count, for ``User.prefetch``."""
    return _key(user.pk)


def unread_count(user, prefetched: dict | None = None) -> int:
    """``prefetched``: what ``User.prefetch`` read, the count's key among them, instead of
    asking the cache again."""
    key = _key(user.pk)
    count = cache.get(key) if prefetched is None else prefetched.get(key)
    if count is None:
        count = Rappel.objects.for_user(user).non_lus().count()
        cache.set(key, count, TTL)
    return count


def forget(user_ids) -> None:
    cache.delete_many([_key(user_id) for user_id in user_ids])
