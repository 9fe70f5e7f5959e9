"""The version of a plan, which its page's cached fragment is keyed on.

A plan's page is rendered once per change of the plan (its fiches, financing lines and
axes), of the funders' catalogue, of the day (lateness, today's line) and of the reader's
right to edit. The signals of actions/signals.py (and ``ensure_axes``) give a plan a new
version on every change; a version lost from the cache is replaced by a new random one,
never by an old one, so a stale fragment is never served.
"""

import uuid

from django.core.cache import cache

VERSION_TIMEOUT = 7 * 24 * 3600
PAGE_TIMEOUT = 24 * 3600
CATALOGUE = "catalogue"


def _version_key(scope) -> str:
    return f"plan-version:{scope}"


def new_plan_version(beneficiaire_id: int | str) -> None:
    cache.set(_version_key(beneficiaire_id), uuid.uuid4().hex, VERSION_TIMEOUT)


def plan_version(beneficiaire_id: int) -> str:
    """The version of the plan and of the funders' catalogue, in one cache round trip."""
    keys = [_version_key(beneficiaire_id), _version_key(CATALOGUE)]
    versions = cache.get_many(keys)
    missing = {key: uuid.uuid4().hex for key in keys if key not in versions}
    if missing:
        cache.set_many(missing, VERSION_TIMEOUT)
    return "-".join({**versions, **missing}[key] for key in keys)
