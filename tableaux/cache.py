"""The version of the dashboards' data, which their cached fragments are keyed on.

« Où en est ma ville ? » and the préfecture's table are rendered once per version, per day
and per perimeter, then served from the cache. Every write, through the portal, to what
they read — plans (fiches, axes, financing lines, funders, indicators, measures),
conventions, posts and their occupations, beneficiaries and their member communes — gives
a new version (tableaux/signals.py), so a fragment is never served after such a change.
Writes that send no signal (the importers' ``bulk_create``, the bench generator) are caught
up by ``TIMEOUT``: a fragment lives at most that long, and the page says when its figures
were computed (« Chiffres au … »). One version for the whole programme: a change anywhere
sends every dashboard back to the database once, which keeps the rule simple and safe.

The programme's figures (national staff, partners) are not versioned: they are the same for
every national reader and cost most (full scans of every plan, a second or two), so they are
recomputed every ``PROGRAMME_CACHE_TIMEOUT`` seconds (``programme_figures``), and the page says
when too. France's are recomputed by Celery beat before they expire (``refresh_programme``),
so that no reader of the national home waits for them.

A version lost from the cache is replaced by a new random one, never an old one; the key
also holds the code version (pvd/cache.py, over ``RENDERED_BY`` and what it imports), so a
deployment never serves a fragment rendered by the previous release. Redis down: every read
misses (pvd/cache.py) and the dashboards are computed, as without a cache.
"""

import uuid
from collections.abc import Callable
from datetime import date

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from pvd.cache import code_version as cache_code_version

from . import lecture

# The modules that render the cached dashboards and map (pvd/cache.py adds what they import,
# the read-models among them, and the templates): a deployment that changes one of them never
# serves a fragment the previous release rendered.
RENDERED_BY = ("tableaux.views", "carte.views")
VERSION_KEY = "tableaux-version"
VERSION_TIMEOUT = 7 * 24 * 3600


def new_version() -> None:
    """A new version now, and again once the transaction commits: a dashboard rendered
    between the change and its commit read the data before it, under a version that ends."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, VERSION_TIMEOUT)
    transaction.on_commit(lambda: cache.set(VERSION_KEY, uuid.uuid4().hex, VERSION_TIMEOUT))


def version() -> str:
    current = cache.get(VERSION_KEY)
    if current is None:
        current = uuid.uuid4().hex
        # Not an « only once » guard: two instances racing keep either new value, and with
        # Redis down (add refuses) the page is computed from the database under a fresh one.
        if not cache.add(VERSION_KEY, current, VERSION_TIMEOUT):
            current = cache.get(VERSION_KEY) or current  # another request set it first
    return f"{current}-{code_version()}"


def code_version() -> str:
    return cache_code_version(*RENDERED_BY)


def fragment_key(*parts) -> str:
    """The key of a dashboard's cached fragment: the version, then what it is rendered for
    (the day, the perimeter, the reader's rights — whatever changes its content)."""
    return ":".join([version(), *(str(part) for part in parts)])


def timeout() -> int:
    return settings.DASHBOARD_CACHE_TIMEOUT


def programme_key(level: str, code: str | None, today: date) -> str:
    return (
        f"tableaux:programme:{level}:{code}:{today.isoformat()}:{code_version()}:{lecture.VERSION}"
    )


def programme_figures(
    level: str, code: str | None, today: date, shared: bool, compute: Callable[[], dict]
) -> dict:
    """The programme's figures for a territory: from the cache for a national reader
    (`shared`: the same for all of them), computed by `compute` otherwise or when missing.
    France's are also computed ahead of their expiry (``refresh_programme``)."""
    if not (shared and settings.PROGRAMME_CACHE_TIMEOUT > 0):
        return compute()
    key = programme_key(level, code, today)
    figures = cache.get(key)
    if figures is None:
        figures = compute()
        figures["calcule_le"] = timezone.localtime()
        cache.set(key, figures, settings.PROGRAMME_CACHE_TIMEOUT)
    return figures


def partner_figures(
    level: str,
    code: str | None,
    today: date,
    financeurs: list,
    shared: bool,
    compute: Callable[[], dict],
) -> dict:
    """Where a partner's funders' money goes, kept like the programme's figures."""
    if not (shared and settings.PROGRAMME_CACHE_TIMEOUT > 0):
        return compute()
    key = programme_key(level, code, today) + ":partenaire:"
    key += ",".join(str(f.pk) for f in financeurs)
    figures = cache.get(key)
    if figures is None:
        figures = compute()
        cache.set(key, figures, settings.PROGRAMME_CACHE_TIMEOUT)
    return figures


def refresh_programme(today: date | None = None) -> None:
    """France's figures, as every national reader gets them, computed and cached now."""
    from communes.models import Beneficiaire

    if settings.PROGRAMME_CACHE_TIMEOUT <= 0:
        return
    today = today or timezone.localdate()
    figures = lecture.programme("france", None, Beneficiaire.objects.all(), today)
    figures["calcule_le"] = timezone.localtime()
    cache.set(programme_key("france", None, today), figures, settings.PROGRAMME_CACHE_TIMEOUT)
