"""The map's data for the readers who see the whole country (national staff, the partners who
read everything): the same for all of them per territory — France, each région, each
département — so it is computed ahead and served stale-while-revalidate, as the programme's
figures are (tableaux/cache.py).

A reader gets the last data computed for the territory asked; when the territory's version
changed since (a write to what the data reads, ``renew_everything``) or the data is older than
``PROGRAMME_CACHE_TIMEOUT``, one refresh is queued (``carte.tasks.refresh_donnees``, one
pending at a time per data and territory: its lock is released when it starts, or after a
minute) and the reader is served the last data meanwhile: a
change shows once that refresh has run (seconds, a worker being free), at the latest after
beat's next ``refresh_carte`` (every ``PROGRAMME_CACHE_TIMEOUT // 2``), which recomputes every
stale entry. Only data never computed (or lost from the cache) is computed for a reader, once.

- ``communes``: carte/geo.py's GeoJSON. Its version is the programme's (``carte|programme``):
  a commune's département may differ from its beneficiary's (Ussel – La Courtine), whose
  territories a write renews, so a write renews them all. Every territory is computed at
  once from two queries (the whole country's points, and its départements' aggregates), each
  territory's features picked out of them.
- ``fiches``: carte/fiches.py's data, unfiltered, per territory of the fiches' beneficiary:
  its version is that territory's (``carte-fiches|departement:36``), so a fiche changed in
  the Indre leaves every other département's fresh. Two queries a territory (the data, the
  count of fiches).

An entry holds the JSON gzipped once, its ETag (a digest of those bytes: it changes when the
data does), the number the page shows (communes placed, fiches) and the version it was
computed under.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import defaultdict
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from communes.models import Departement, Region
from pvd import policy
from tableaux import cache as dashboard_cache

from . import fiches, geo

COMMUNES, FICHES = "communes", "fiches"
VERSION = 1  # raise it when an entry's shape changes
KEEP = 7 * 24 * 3600  # an entry is kept this long, served stale while refreshed
REFRESH_LOCK = 60  # seconds: at most one queued refresh of an entry a minute


def partage(user) -> bool:
    """Whether ``user`` reads the data shared by every reader of the whole country."""
    return settings.PROGRAMME_CACHE_TIMEOUT > 0 and policy.sees_everything(user)


def territoire(filtre: geo.Filtre) -> tuple[str, str | None]:
    if filtre.departement is not None:
        return "departement", filtre.departement.code
    if filtre.region is not None:
        return "region", filtre.region.code
    return "france", None


def _filtre(level: str, code: str | None) -> geo.Filtre:
    # The filters compare keys only: no need to read the territory's row.
    if level == "departement":
        return geo.Filtre(departement=Departement(code=code))
    if level == "region":
        return geo.Filtre(region=Region(code=code))
    return geo.Filtre()


def _scope(nom: str, level: str, code: str | None) -> str:
    if nom == COMMUNES:
        return dashboard_cache.family_scope("carte", dashboard_cache.PROGRAMME)
    scope = dashboard_cache.territory_scope(level, code)
    return dashboard_cache.family_scope(fiches.FAMILLE, scope)


def _key(nom: str, level: str, code: str | None) -> str:
    return f"carte:donnees:{nom}:{level}:{code}:{dashboard_cache.code_version()}:{VERSION}"


def _entry(data: bytes, nb: int, version: str) -> dict:
    compresse = gzip.compress(data, mtime=0)
    return {
        "gzip": compresse,
        "etag": f'"{hashlib.sha256(compresse).hexdigest()[:32]}"',
        "nb": nb,
        "version": version,
        "calcule_le": timezone.now(),
    }


def _stale(stored: dict, version: str) -> bool:
    age = timezone.now() - stored["calcule_le"]
    return stored["version"] != version or age > timedelta(seconds=settings.PROGRAMME_CACHE_TIMEOUT)


def _compute(nom: str, level: str, code: str | None) -> tuple[bytes, int]:
    filtre = _filtre(level, code)
    if nom == COMMUNES:
        chosen = [feature for *_, feature in geo.features(None, filtre)]
        return geo.collection(chosen), sum(f["properties"]["couche"] == "commune" for f in chosen)
    filterset = fiches.filtre_fiches(None, None, filtre)
    return fiches.donnees(filterset), filterset.qs.count()


def _lock(nom: str, level: str, code: str | None) -> str:
    return f"carte:rafraichir:{nom}:{level}:{code}"


def _queue_refresh(nom: str, level: str, code: str | None) -> None:
    if nom == COMMUNES:  # every territory's at once: one refresh for all
        level, code = "france", None
    if cache.add(_lock(nom, level, code), 1, REFRESH_LOCK):
        from .tasks import refresh_donnees

        transaction.on_commit(partial(refresh_donnees.delay, nom, level, code))


def donnees(nom: str, filtre: geo.Filtre) -> dict:
    """The entry of ``nom`` (communes, fiches) for the map's territory as last computed, a
    refresh queued when it is stale; computed now when there is none (its reader waits,
    once: right after a deployment, before beat's first run)."""
    level, code = territoire(filtre)
    version = dashboard_cache.versions({_scope(nom, level, code)})
    stored = cache.get(_key(nom, level, code))
    if stored is None:
        stored = _entry(*_compute(nom, level, code), version)
        cache.set(_key(nom, level, code), stored, KEEP)
    elif _stale(stored, version):
        _queue_refresh(nom, level, code)
    return stored


# Refreshes (carte/tasks.py) -----------------------------------------------------------------


def territoires() -> list[tuple[str, str | None]]:
    """France, each région, each département: the territories the map is asked for."""
    regions = Region.objects.order_by("code").values_list("code", flat=True)
    departements = Departement.objects.order_by("code").values_list("code", flat=True)
    return [
        ("france", None),
        *(("region", code) for code in regions),
        *(("departement", code) for code in departements),
    ]


def refresh_communes(places: list[tuple[str, str | None]] | None = None) -> int:
    """Every territory's communes, from the whole country's two queries: each territory's
    features picked out of them (those of its départements). Returns how many were stored."""
    places = territoires() if places is None else places
    version = dashboard_cache.versions({_scope(COMMUNES, "france", None)})
    tous = geo.features(None)
    par_code: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for departement, region, feature in tous:
        par_code["departement", departement].append(feature)
        par_code["region", region].append(feature)
    entries = {}
    for level, code in places:
        chosen = [f for *_, f in tous] if level == "france" else par_code[level, code]
        nb = sum(f["properties"]["couche"] == "commune" for f in chosen)
        entries[_key(COMMUNES, level, code)] = _entry(geo.collection(chosen), nb, version)
    cache.set_many(entries, KEEP)
    return len(entries)


def refresh_fiches(level: str, code: str | None) -> None:
    version = dashboard_cache.versions({_scope(FICHES, level, code)})
    cache.set(_key(FICHES, level, code), _entry(*_compute(FICHES, level, code), version), KEEP)


def refresh(nom: str, level: str, code: str | None) -> None:
    """One stale entry recomputed (the communes: every territory's, they share their version)."""
    if settings.PROGRAMME_CACHE_TIMEOUT <= 0:
        return
    # Released first: a change made while this refresh runs queues the next one.
    cache.delete(_lock(nom, level, code))
    if nom == COMMUNES:
        refresh_communes()
    else:
        refresh_fiches(level, code)


def refresh_stale() -> dict[str, int]:
    """Every entry missing or stale recomputed (beat): the communes of every territory when
    one is, the fiches territory by territory. Returns how many were stored of each."""
    if settings.PROGRAMME_CACHE_TIMEOUT <= 0:
        return {}
    places = territoires()
    stored = {COMMUNES: 0, FICHES: 0}
    versions: dict[str, str] = {}

    def version(scope: str) -> str:
        if scope not in versions:
            versions[scope] = dashboard_cache.versions({scope})
        return versions[scope]

    for nom in (COMMUNES, FICHES):
        keys = {place: _key(nom, *place) for place in places}
        found = cache.get_many(list(keys.values()))
        stale = [
            place
            for place, key in keys.items()
            if key not in found or _stale(found[key], version(_scope(nom, *place)))
        ]
        if not stale:
            continue
        if nom == COMMUNES:
            stored[nom] = refresh_communes(places)
        else:
            for level, code in stale:
                refresh_fiches(level, code)
            stored[nom] = len(stale)
    return stored
