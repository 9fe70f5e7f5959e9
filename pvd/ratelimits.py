"""allauth's rate-limit counters, kept in the database rather than in Redis.

allauth counts attempts in Django's cache, under keys ``allauth:rl:…`` (``RATE_LIMITS`` in
pvd/cache.py): wrong passwords per address and per account, logins per address, password
resets and changes, reauthentications (``ACCOUNT_RATE_LIMITS`` in settings). Each counter
is the list of the times of its attempts, read and written under a lock that allauth takes
with ``cache.add``. The portal's cache answers « nothing » while Redis is down (pvd/cache.py):
counters read there would be empty and never saved, and every limit would be lifted for the
outage. The cache therefore hands these keys to the functions below, which keep them in
``CompteurLimite`` rows: logins keep working during an outage, and no limit fails open.
A few queries per login attempt; expired rows are deleted as counters are written.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import CompteurLimite

# The longest a counter lives when a caller gives no timeout (allauth always gives one).
LONGEST = timedelta(days=1)


def _expiry(now: datetime, timeout: float | None) -> datetime:
    return now + (LONGEST if timeout is None else min(LONGEST, timedelta(seconds=timeout)))


def add(key: str, value, timeout: float | None) -> bool:
    """Store the value unless the key holds one already: allauth's lock around a counter,
    refused to a second request by the database's unique key."""
    now = timezone.now()
    with transaction.atomic():
        CompteurLimite.objects.filter(cle=key, expire_le__lte=now).delete()
        try:
            with transaction.atomic():
                expire_le = _expiry(now, timeout)
                CompteurLimite.objects.create(cle=key, valeur=value, expire_le=expire_le)
        except IntegrityError:
            return False
    return True


def get(key: str, default=None):
    valeur = (
        CompteurLimite.objects.filter(cle=key, expire_le__gt=timezone.now())
        .values_list("valeur", flat=True)
        .first()
    )
    return default if valeur is None else valeur


def set(key: str, value, timeout: float | None) -> None:  # noqa: A001 (the cache's verb)
    now = timezone.now()
    CompteurLimite.objects.bulk_create(
        [CompteurLimite(cle=key, valeur=value, expire_le=_expiry(now, timeout))],
        update_conflicts=True,
        unique_fields=["cle"],
        update_fields=["valeur", "expire_le"],
    )
    CompteurLimite.objects.filter(expire_le__lt=now).delete()


def delete(key: str) -> bool:
    return CompteurLimite.objects.filter(cle=key).delete()[0] > 0
