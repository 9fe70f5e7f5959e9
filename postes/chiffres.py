"""The posts list's figures — its counts (postes/tableaux.py ``compteurs``) and its totals by
région and funder (postes/financement.py ``totaux``) — and its page of rows, kept in the cache.

They are kept on what they are computed from: the filtered posts' ids (a digest of them, in
any order: the figures do not depend on it; a reader only ever gets the figures of the very
posts their own query found, so a préfecture never gets another's), the year, the funders the
reader reads, the day, the code, and the **posts' data version**: a write through the portal
to what the list reads — a post, its beneficiaries, its occupations, its co-financing years
and lines, a beneficiary — renews it (``renew``, connected in postes/signals.py), now and
again once the transaction commits; so do ``tableaux.cache.renew_everything`` and a bulk
write that says so (``pvd.cache.data_rewritten``). Figures computed under another version are
not served as current.

The figures of a long list (more than ``financement.PEU_DE_POSTES`` posts: the whole
country's, a whole état's) asked by a reader who sees every post cost the database tens of
milliseconds; the same for every such reader, they are served stale-while-revalidate, as the
programme's figures are (tableaux/cache.py): a reader gets the last ones computed for these
posts, the page saying when they were computed (« Compteurs et totaux au … ») while one refresh is
queued (``postes.tasks.refresh_chiffres``, one pending at a time per entry: its lock is
released when it starts). Beat also computes the whole country's figures before they age
(``precompute``), and a write queues it too, so that its author finds them current. Only
figures never computed for these posts (or lost from the cache) are computed for a reader.
Every other list is computed again once its version changed. The rows are never served
stale: a post changed shows at once.
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from pvd import policy
from pvd.cache import DATA_REWRITTEN_KEY, code_version
from pvd.db import ensemble

from . import financement, tableaux
from .models import Poste

VERSION_KEY = "postes-version"
VERSION_TIMEOUT = 7 * 24 * 3600
KEEP = 7 * 24 * 3600  # figures are kept this long, served stale while refreshed
REFRESH_LOCK = 60  # seconds: at most one pending refresh of an entry
NATIONAL_LOCK = "postes:precalcul"  # the whole country's figures queued for a refresh
# The modules that compute and render the figures and rows (pvd/cache.py adds their imports
# and the templates): a deployment never serves what the previous release computed.
RENDERED_BY = ("postes.views",)


# The posts' data version -------------------------------------------------------------------


def _renew() -> None:
    cache.set(VERSION_KEY, uuid.uuid4().hex, VERSION_TIMEOUT)


def renew() -> None:
    """A new version of the posts' data now, and again once the transaction commits (a list
    computed between the write and its commit read the data before it); then the whole
    country's figures queued for a refresh."""
    _renew()
    transaction.on_commit(_renew)
    transaction.on_commit(queue_precompute)


def version(lues: dict) -> str:
    """The posts' data version and the last bulk write, from ``lues`` (the entries the view
    read with the reader's perimeter: ``VERSION_KEY`` and ``DATA_REWRITTEN_KEY``); a missing
    version is set to a new random one, never an old one."""
    current = lues.get(VERSION_KEY)
    if current is None:
        current = uuid.uuid4().hex
        if not cache.add(VERSION_KEY, current, VERSION_TIMEOUT):
            current = cache.get(VERSION_KEY) or current  # another request set it first
    return f"{current}.{lues.get(DATA_REWRITTEN_KEY, '')}"


def read_version() -> str:
    return version(cache.get_many([VERSION_KEY, DATA_REWRITTEN_KEY]))


# Keys --------------------------------------------------------------------------------------


def _digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def chiffres_key(ids: list[int], today: date, year: int, funders: set[str] | None) -> str:
    content = _digest(sorted(ids), today, year, financement.variante(funders))
    return f"postes:chiffres:{code_version(*RENDERED_BY)}:{content}"


def lock_key(key: str) -> str:
    return f"{key}:rafraichir"


def lignes_key(ids: list[int], today: date, year: int, funders, version_: str) -> str:
    content = _digest(ids, today, year, financement.variante(funders), version_)
    return f"postes:lignes:{code_version(*RENDERED_BY)}:{content}"


# The figures -------------------------------------------------------------------------------


@dataclass
class Chiffres:
    compteurs: tableaux.Compteurs
    totaux: list[financement.TotalFinanceur]
    calcule_le: datetime
    a_jour: bool = True  # False: served stale while a refresh is queued


def compute(ids: list[int], today: date, year: int, funders: set[str] | None) -> Chiffres:
    return Chiffres(
        compteurs=tableaux.compteurs(ids, today, funders),
        totaux=financement.totaux(ids, year, funders),
        calcule_le=timezone.now(),
    )


def store(key: str, chiffres: Chiffres, version_: str) -> Chiffres:
    cache.set(key, {"version": version_, "chiffres": chiffres}, KEEP)
    return chiffres


def partage(user, ids: list[int]) -> bool:
    """Whether the figures of these posts may be served stale to ``user`` while refreshed:
    a long list, read by someone who sees every post (the same for all of them)."""
    return (
        settings.PROGRAMME_CACHE_TIMEOUT > 0
        and len(ids) > financement.PEU_DE_POSTES
        and policy.sees_everything(user)
    )


def page(
    user, ids: list[int], page_ids: list[int], today: date, year: int, funders, lues: dict
) -> tuple[Chiffres, list[dict]]:
    """The figures of the posts of ``ids`` and the rows of those of ``page_ids``: from the
    cache (one round trip) when computed under the current version (``lues``: what the view
    read with the reader's perimeter) or, the figures of a list ``partage`` with ``user``,
    whatever their age (a refresh queued); otherwise computed, what is missing in one round
    trip to the database when the list is short (pvd/db.py ``ensemble``: PostgreSQL keeps
    these statements prepared on the connection, their planning cost most of what they
    cost), a long list's figures planned for its ids."""
    version_ = version(lues)
    key = chiffres_key(ids, today, year, funders)
    rows_key = lignes_key(page_ids, today, year, funders, version_)
    found = cache.get_many([key, rows_key])
    rows, stored, figures = found.get(rows_key), found.get(key), None
    if stored is not None and stored["version"] == version_:
        figures = stored["chiffres"]
    elif stored is not None and partage(user, ids):
        _queue_refresh(key, ids, today, year, funders)
        figures = Chiffres(**{**vars(stored["chiffres"]), "a_jour": False})
    short = len(ids) <= financement.PEU_DE_POSTES
    requetes = []
    if rows is None:
        requetes.append(tableaux.lignes_requete(page_ids, today, year, funders))
    if figures is None and short:
        requetes.append(tableaux.compteurs_requete(ids, today, funders))
        requetes.append(financement.totaux_requete(ids, year, funders))
    resultats = ensemble(*requetes) if requetes else []
    computed = {}
    if rows is None:
        rows = computed[rows_key] = tableaux.lignes_de(resultats.pop(0), page_ids)
    if figures is None:
        if short:
            figures = Chiffres(
                compteurs=tableaux.compteurs_de(resultats[0], today),
                totaux=financement.totaux_de(resultats[1]),
                calcule_le=timezone.now(),
            )
        else:
            figures = compute(ids, today, year, funders)
        computed[key] = {"version": version_, "chiffres": figures}
    if computed:
        cache.set_many(computed, KEEP)
    return figures, rows


def _queue_refresh(key: str, ids: list[int], today: date, year: int, funders) -> None:
    if cache.add(lock_key(key), 1, REFRESH_LOCK):
        from .tasks import refresh_chiffres

        funders = None if funders is None else sorted(funders)
        transaction.on_commit(
            partial(refresh_chiffres.delay, ids, today.isoformat(), year, funders)
        )


def refresh(ids: list[int], today: date, year: int, funders: set[str] | None) -> None:
    """These posts' figures computed and stored now, under the current version."""
    key = chiffres_key(ids, today, year, funders)
    cache.delete(lock_key(key))  # a write from now on queues another refresh
    version_ = read_version()
    store(key, compute(ids, today, year, funders), version_)


def queue_precompute() -> None:
    """The whole country's figures queued for a refresh (one pending at a time)."""
    if settings.PROGRAMME_CACHE_TIMEOUT > 0 and cache.add(NATIONAL_LOCK, 1, REFRESH_LOCK):
        from .tasks import precompute_chiffres

        precompute_chiffres.delay()


def precompute(today: date | None = None) -> bool:
    """The figures of the unfiltered list of the readers who see every post, this year,
    computed now unless current (beat; a write). Returns whether they were computed."""
    cache.delete(NATIONAL_LOCK)
    if settings.PROGRAMME_CACHE_TIMEOUT <= 0:
        return False
    today = today or timezone.localdate()
    ids = list(Poste.objects.values_list("pk", flat=True))
    key = chiffres_key(ids, today, today.year, None)
    version_ = read_version()
    stored = cache.get(key)
    if stored is not None and stored["version"] == version_:
        return False
    store(key, compute(ids, today, today.year, None), version_)
    return True
