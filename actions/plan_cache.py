"""The version of a plan, which its page's cached fragment is keyed on.

A plan's page is rendered once per change of the plan (its fiches, financing lines and
axes), of the funders' catalogue, of the day (lateness, today's line) and of the reader's
right to edit. The signals of actions/signals.py (and ``ensure_axes``) give a plan a new
version on every change; a version lost from the cache is replaced by a new random one,
never by an old one, so a stale fragment is never served. The version also changes with
the templates and code that render the page, so a deployment never serves a fragment
rendered by the previous release.
"""

import hashlib
import uuid
from functools import cache as once
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

VERSION_TIMEOUT = 7 * 24 * 3600
PAGE_TIMEOUT = 24 * 3600
CATALOGUE = "catalogue"


def _version_key(scope) -> str:
    return f"plan-version:{scope}"


def new_plan_version(beneficiaire_id: int | str) -> None:
    """A new version now, and again once the transaction commits: a page rendered between
    the change and its commit read the data before it, under a version that then ends."""
    cache.set(_version_key(beneficiaire_id), uuid.uuid4().hex, VERSION_TIMEOUT)
    transaction.on_commit(
        lambda: cache.set(_version_key(beneficiaire_id), uuid.uuid4().hex, VERSION_TIMEOUT)
    )


def plan_version(beneficiaire_id: int) -> str:
    """The version of the plan and of the funders' catalogue, in one cache round trip."""
    keys = [_version_key(beneficiaire_id), _version_key(CATALOGUE)]
    versions = cache.get_many(keys)
    missing = {key: uuid.uuid4().hex for key in keys if key not in versions}
    if missing:
        cache.set_many(missing, VERSION_TIMEOUT)
    return "-".join([*({**versions, **missing}[key] for key in keys), code_version()])


@once
def code_version() -> str:
    """A digest of the templates and of the code that render a plan's page."""
    root = Path(settings.BASE_DIR)
    digest = hashlib.sha256()
    patterns = ["templates/**/*.html", "actions/*.py", "*/templatetags/*.py"]
    for path in sorted(path for pattern in patterns for path in root.glob(pattern)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
