"""The versions of the dashboards' data, per territory, which their cached fragments are keyed on.

« Où en est ma ville ? », the préfecture's table and the map are rendered once per version,
per day and per perimeter, then served from the cache. A version is kept per **scope**: a
beneficiary (``beneficiaire:<pk>``), a département, a région and the whole programme
(``programme``). A write, through the portal, to what they read — plans (fiches, axes,
financing lines, indicators, measures), conventions, posts and their occupations,
beneficiaries and their member communes — renews the versions of the territories it touches
(tableaux/signals.py, from the paths to the beneficiary declared with each read-model's
``READS``): a fiche of Le Blanc renews Le Blanc, the Indre, Centre-Val de Loire and the
programme, never Ussel. A change that moves something from one territory to another (a
beneficiary changing département, a member commune or a post changing beneficiary) renews
both, the old territory read before the write. A fragment's key holds the versions of the
scopes it reads: the élu's and the chef de projet's home their beneficiary, the préfecture's
table its départements, the map the reader's (``scopes_for``). Each family of read-models
has its own versions (``family_scope``: the dashboards', ``carte|…`` for the map), renewed
only by writes to the models it reads: a fiche changed leaves the map warm. A last scope,
``tout``, is in every key: a change that reaches every territory (the funders' catalogue)
renews it, and a bulk write that sends no signal, once its command knows it wrote, renews
every key (``pvd.cache.data_rewritten``: the importers, the bench generator). Other writes without
signals are caught up by ``TIMEOUT``: a fragment lives at most that long, and the page says
when its figures were computed (« Chiffres au … »). A version is renewed now and again once
the transaction commits: a dashboard rendered between the change and its commit read the
data before it, under a version that ends.

The programme's figures (national staff, partners: France, each région, each département,
and each partner's own funders' part) are the same for every national reader and cost most
(scans of every plan), so they are never computed for a reader while any was computed
before (stale-while-revalidate, ``programme_figures``): a reader gets the last figures with
their « Chiffres calculés le … », and when these are older than ``PROGRAMME_CACHE_TIMEOUT``,
from another day, or their territory's version changed since, one refresh of that territory
is queued (at most one a minute per territory). Celery beat also computes them all before
they age (``refresh_programme``), one grouped query per level and figure for all the régions
and all the départements together (tableaux/lecture.py ``programmes``).

A page reads what it needs from the cache in few round trips (``Lues``: the versions of its
scopes with the entries whose keys are known before, then those keyed on these versions):
the national and partner homes read the programme's versions, figures and refresh lock
together, then their role cards and the programme's rendered parts together.

A version lost from the cache is replaced by a new random one, never an old one; the key
also holds the code version (pvd/cache.py, over ``RENDERED_BY`` and what it imports), so a
deployment never serves a fragment rendered by the previous release. Redis down: every read
misses (pvd/cache.py) and the dashboards are computed, as without a cache.
"""

import uuid
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from communes.models import Beneficiaire, Departement
from pvd import policy
from pvd.cache import DATA_REWRITTEN_KEY
from pvd.cache import code_version as cache_code_version

from . import lecture

# The modules that render the cached dashboards and map (pvd/cache.py adds what they import,
# the read-models among them, and the templates): a deployment that changes one of them never
# serves a fragment the previous release rendered.
RENDERED_BY = ("tableaux.views", "carte.views")
VERSION_PREFIX = "tableaux-version:"
VERSION_TIMEOUT = 7 * 24 * 3600
PROGRAMME = "programme"
TOUT = "tout"  # in every key: a change that reaches every territory
DASHBOARDS = "tableaux"  # the family of tableaux/lecture.py's read-models
# The programme's figures are kept this long, served stale while a refresh is queued.
PROGRAMME_KEEP = 7 * 24 * 3600
REFRESH_LOCK = 60  # seconds: at most one queued refresh of a territory's figures per minute


# Scopes ------------------------------------------------------------------------------------


def beneficiaire_scope(pk) -> str:
    return f"beneficiaire:{pk}"


def departement_scope(code) -> str:
    return f"departement:{code}"


def region_scope(code) -> str:
    return f"region:{code}"


def territory_scope(level: str, code: str | None) -> str:
    """The scope of the programme's figures of France, a région or a département."""
    if level == "france":
        return PROGRAMME
    return region_scope(code) if level == "region" else departement_scope(code)


def scopes_of(rows: Iterable[tuple]) -> set[str]:
    """The scopes a change touches, from its beneficiaries' (pk, département, région) rows:
    each beneficiary, its département and région, and the programme."""
    scopes = set()
    for pk, departement, region in rows:
        if pk is None:  # a post serving no beneficiary
            continue
        scopes.add(beneficiaire_scope(pk))
        if departement:
            scopes.add(departement_scope(departement))
        if region:
            scopes.add(region_scope(region))
    return scopes | {PROGRAMME} if scopes else scopes


def family_scope(family: str, scope: str) -> str:
    """A scope's version for one family of read-models: the dashboards' (``tableaux``, the
    scope itself) or another's (the map: ``carte|departement:36``), renewed only by a write
    to a model that family reads. ``tout`` is every family's."""
    return scope if family == DASHBOARDS or scope == TOUT else f"{family}|{scope}"


def scopes_for(user, family: str) -> set[str]:
    """The scopes a reader's perimeter-wide fragments (the map) read: the programme for a
    national reader, a préfecture's départements, the other readers' beneficiaries."""
    if policy.sees_everything(user):
        scopes = {PROGRAMME}
    elif codes := policy.prefecture_departements(user):
        scopes = {departement_scope(code) for code in codes}
    else:
        pks = Beneficiaire.objects.for_user(user).values_list("pk", flat=True)
        scopes = {beneficiaire_scope(pk) for pk in pks}
    return {family_scope(family, scope) for scope in scopes}


# Versions ----------------------------------------------------------------------------------


def _renew(scopes: Iterable[str]) -> None:
    cache.set_many({VERSION_PREFIX + scope: uuid.uuid4().hex for scope in scopes}, VERSION_TIMEOUT)


def renew(scopes: Iterable[str]) -> None:
    """New versions of these scopes now, and again once the transaction commits."""
    scopes = frozenset(scopes)
    if scopes:
        _renew(scopes)
        transaction.on_commit(partial(_renew, scopes))


def renew_everything() -> None:
    """Every territory's fragments read again (``tout`` is in every key), and the posts
    list's figures and rows (postes/chiffres.py)."""
    from postes import chiffres

    renew({TOUT})
    chiffres.renew()


class Lues(dict):
    """Entries read from the cache together, in one round trip (``get_many``): the versions of
    the scopes a page's fragments read, and any entry whose key is known before (the
    programme's figures, a refresh lock, a fragment). Passed to ``versions``,
    ``fragment_key``, ``programme_figures``…, which ask the cache only for what was not read
    (``asked``); a value set during the request is noted here too."""

    def __init__(self, scopes: Iterable[str] | None = None, keys: Iterable[str] = ()) -> None:
        """Nothing read yet; with ``scopes``, their versions and ``keys`` read now."""
        self.asked: set[str] = set()
        self.wanted: set[str] = set()
        # What ``keep`` holds back until ``write``, by duration (None: written at once).
        self.to_write: dict[int, dict] | None = None
        super().__init__()
        if scopes is not None:
            self.read([*version_keys(scopes), DATA_REWRITTEN_KEY, *keys])

    def want(self, keys: Iterable[str]) -> None:
        """These entries will be asked: read them with the next round trip."""
        self.wanted.update(keys)

    def read(self, keys: Iterable[str]) -> None:
        """These entries too, with those wanted, in one more round trip (none if every one
        of these was read)."""
        keys = [key for key in dict.fromkeys(keys) if key not in self.asked]
        if keys:
            keys = [*keys, *(key for key in self.wanted if key not in self.asked)]
            self.wanted.clear()
            self.update(cache.get_many(keys))
            self.asked.update(keys)

    def get_entry(self, key: str):
        """An entry, from what was read, or from the cache (None when missing)."""
        if key not in self.asked:
            self.read([key])
        return self.get(key)

    def write_later(self) -> None:
        """From now on, ``keep`` holds the entries back until ``write`` (the page, once
        rendered): the entries a cold page computes are written in one round trip per
        duration, not one each."""
        if self.to_write is None:
            self.to_write = {}

    def keep(self, key: str, value, timeout: int) -> None:
        """An entry computed by the page: noted as read, and written to the cache now, or
        with the others by ``write`` after ``write_later``."""
        self[key] = value
        self.asked.add(key)
        if self.to_write is None:
            cache.set(key, value, timeout)
        else:
            self.to_write.setdefault(timeout, {})[key] = value

    def write(self) -> None:
        """The entries held back by ``keep``, one round trip per duration."""
        for timeout, entries in (self.to_write or {}).items():
            cache.set_many(entries, timeout)
        if self.to_write is not None:
            self.to_write.clear()


def version_keys(scopes: Iterable[str], tout: bool = True) -> list[str]:
    return [VERSION_PREFIX + scope for scope in sorted({TOUT, *scopes} if tout else set(scopes))]


def versions(scopes: Iterable[str], lues: Lues | None = None, tout: bool = True) -> str:
    """The current versions of these scopes (and of ``tout`` unless told not to, and the
    last bulk write), one round trip (none when ``lues`` read them); a missing one is set to
    a new random value."""
    keys = version_keys(scopes, tout)
    lues = Lues() if lues is None else lues
    lues.read([*keys, DATA_REWRITTEN_KEY])
    for key in keys:
        if key not in lues:
            current = uuid.uuid4().hex
            # Not an « only once » guard: two instances racing keep either new value, and
            # with Redis down (add refuses) the page is computed under a fresh one.
            if not cache.add(key, current, VERSION_TIMEOUT):
                current = cache.get(key) or current  # another request set it first
            lues[key] = current
    return ".".join([*(lues[key] for key in keys), str(lues.get(DATA_REWRITTEN_KEY, ""))])


def code_version() -> str:
    return cache_code_version(*RENDERED_BY)


def fragment_key(scopes: Iterable[str], *parts, lues: Lues | None = None, tout: bool = True) -> str:
    """The key of a dashboard's cached fragment: the versions of the scopes it reads, the
    code, then what it is rendered for (the day, the perimeter, the reader's rights —
    whatever changes its content). ``tout=False`` for a fragment that reads none of the
    rows a change of every territory stands for (the funders' catalogue)."""
    version = versions(scopes, lues, tout)
    return ":".join([version, code_version(), *(str(part) for part in parts)])


def computation_key(calcule_le, *parts, lues: Lues | None = None) -> str:
    """The key of a part rendered from figures kept for many readers (the programme's, a
    partner's): the time they were computed (what they show, stored with them), the last
    bulk write of the reference data (names read with the page), the code, then ``parts``."""
    lues = Lues() if lues is None else lues
    lues.read([DATA_REWRITTEN_KEY])
    rewritten = str(lues.get(DATA_REWRITTEN_KEY, ""))
    return ":".join([calcule_le.isoformat(), rewritten, code_version(), *map(str, parts)])


def timeout() -> int:
    return settings.DASHBOARD_CACHE_TIMEOUT


# The programme's figures: stale-while-revalidate --------------------------------------------


def programme_key(level: str, code: str | None, funders: str = "") -> str:
    key = f"tableaux:programme:{level}:{code}:{code_version()}:{lecture.VERSION}"
    return f"{key}:partenaire:{funders}" if funders else key


def funders_key(financeurs) -> str:
    return ",".join(str(pk) for pk in sorted(f.pk if hasattr(f, "pk") else f for f in financeurs))


def _stale(stored: dict, version: str, today: date) -> bool:
    age = timezone.now() - stored["calcule_le"]
    return (
        stored["version"] != version
        or stored["jour"] != today
        or age > timedelta(seconds=settings.PROGRAMME_CACHE_TIMEOUT)
    )


def _store(key: str, figures: dict, version: str, today: date) -> dict:
    figures["calcule_le"] = timezone.localtime()
    stored = {"figures": figures, "version": version, "jour": today, "calcule_le": timezone.now()}
    cache.set(key, stored, PROGRAMME_KEEP)
    return figures


def refresh_lock_key(level: str, code: str | None) -> str:
    return f"tableaux:rafraichir:{level}:{code}"


def _queue_refresh(level: str, code: str | None, lues: Lues | None = None) -> None:
    key = refresh_lock_key(level, code)
    if lues is not None and lues.get(key):  # read with the figures: queued less than a minute ago
        return
    if cache.add(key, 1, REFRESH_LOCK):
        from .tasks import refresh_territory

        transaction.on_commit(partial(refresh_territory.delay, level, code))
    if lues is not None:
        lues[key] = 1


def read_programme(lues: Lues, level: str, code: str | None, financeurs: list = ()) -> None:
    """What ``programme_figures`` (and ``partner_figures`` for these funders) will ask, read
    in one round trip: the territory's version, its figures and its refresh lock."""
    keys = [programme_key(level, code), refresh_lock_key(level, code)]
    if financeurs:
        keys.append(programme_key(level, code, funders_key(financeurs)))
    lues.read([*version_keys({territory_scope(level, code)}), DATA_REWRITTEN_KEY, *keys])


def _kept(
    key: str, level: str, code, today: date, compute: Callable[[], dict], lues: Lues | None
) -> dict:
    lues = lues if lues is not None else Lues()
    lues.read([*version_keys({territory_scope(level, code)}), key, refresh_lock_key(level, code)])
    version = versions({territory_scope(level, code)}, lues)
    stored = lues.get_entry(key)
    if stored is None:  # never computed (or lost): the reader waits, once
        return _store(key, compute(), version, today)
    if _stale(stored, version, today):
        _queue_refresh(level, code, lues)
    return stored["figures"]


def programme_figures(
    level: str,
    code: str | None,
    today: date,
    shared: bool,
    compute: Callable[[], dict],
    lues: Lues | None = None,
) -> dict:
    """The programme's figures for a territory: the last ones computed for a national reader
    (`shared`: the same for all of them; refreshed in the background when stale), computed by
    `compute` otherwise or when none was ever computed. ``lues``: what the page read already
    (the figures, their territory's version and refresh lock, read in one round trip)."""
    if not (shared and settings.PROGRAMME_CACHE_TIMEOUT > 0):
        return compute()
    return _kept(programme_key(level, code), level, code, today, compute, lues)


def partner_figures(
    level: str,
    code: str | None,
    today: date,
    financeurs: list,
    shared: bool,
    compute: Callable[[], dict],
    lues: Lues | None = None,
) -> dict:
    """Where a partner's funders' money goes, kept like the programme's figures."""
    if not (shared and settings.PROGRAMME_CACHE_TIMEOUT > 0):
        return compute()
    key = programme_key(level, code, funders_key(financeurs))
    return _kept(key, level, code, today, compute, lues)


def partner_funder_sets() -> list[list]:
    """The sets of catalogue funders the partners follow (each partner's, as
    ``policy.partner_funders`` reads them, sorted by name), each once: two queries."""
    from pvd.models import Role

    financeur = Role._meta.get_field("financeurs").related_model
    par_partenaire: dict[int, set[int]] = {}
    for user_id, funder in Role.objects.filter(
        kind=Role.Kind.PARTENAIRE, financeurs__isnull=False
    ).values_list("user_id", "financeurs"):
        par_partenaire.setdefault(user_id, set()).add(funder)
    funders = financeur.objects.in_bulk({pk for pks in par_partenaire.values() for pk in pks})
    sets = {
        funders_key(pks): sorted((funders[pk] for pk in pks), key=lambda f: f.nom)
        for pks in par_partenaire.values()
    }
    return list(sets.values())


def refresh_territory(level: str, code: str | None, today: date | None = None) -> None:
    """One territory's figures, as every national reader and partner gets them, now."""
    if settings.PROGRAMME_CACHE_TIMEOUT <= 0:
        return
    today = today or timezone.localdate()
    version = versions({territory_scope(level, code)})
    beneficiaires = Beneficiaire.objects.all()
    if level == "region":
        beneficiaires = beneficiaires.filter(departement__region_id=code)
    elif level == "departement":
        beneficiaires = beneficiaires.filter(departement_id=code)
    figures = lecture.programme(level, code, beneficiaires, today)
    _store(programme_key(level, code), figures, version, today)
    actifs = beneficiaires.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)
    for funders in partner_funder_sets():
        key = programme_key(level, code, funders_key(funders))
        if cache.get(key) is not None:  # a partner read it: keep it fresh
            _store(key, lecture.partenaire(level, actifs, funders), version, today)


def refresh_programme(today: date | None = None) -> dict[str, int]:
    """Every territory's figures — France, each région, each département, and each partner's
    part of them — computed and cached now (beat), one grouped query per level and figure.
    Returns how many were stored per level."""
    if settings.PROGRAMME_CACHE_TIMEOUT <= 0:
        return {}
    today = today or timezone.localdate()
    beneficiaires = Beneficiaire.objects.all()
    regions = set(Departement.objects.values_list("region_id", flat=True))
    codes = {"france": [None], "region": sorted(regions)}
    codes["departement"] = sorted(Departement.objects.values_list("code", flat=True))
    scopes = {
        level: {code: territory_scope(level, code) for code in level_codes}
        for level, level_codes in codes.items()
    }
    all_versions = {
        scope: versions({scope}) for level in scopes.values() for scope in level.values()
    }
    stored: dict[str, int] = {}
    funder_sets = partner_funder_sets()
    for level, level_codes in codes.items():
        figures = lecture.programmes(level, beneficiaires, today, level_codes)
        for code in level_codes:
            version = all_versions[scopes[level][code]]
            _store(programme_key(level, code), figures[code], version, today)
        for funders in funder_sets:
            parts = lecture.partenaires(level, beneficiaires, funders, level_codes)
            for code in level_codes:
                key = programme_key(level, code, funders_key(funders))
                _store(key, parts[code], all_versions[scopes[level][code]], today)
        stored[level] = len(level_codes)
    return stored
