"""The version of a plan, which its page's cached fragment is keyed on.

A plan's page is rendered once per change of the plan (its fiches, financing lines and
axes), of the funders' catalogue, of the day (lateness, today's line) and of the reader's
right to edit. The signals of actions/signals.py (and ``ensure_axes``) give a plan a new
version on every change; a version lost from the cache is replaced by a new random one,
never by an old one, so a stale fragment is never served. The version also changes with
the templates and code that render the page, so a deployment never serves a fragment
rendered by the previous release.

Right after a change, the page is rendered again from parts that are themselves cached on
their content (``content_key``), not on the plan's version: each fiche's row, each bar of
the timeline, the timeline, the table by funder; and the empty filter form on the funders'
catalogue and the plan's axes. A change thus renders again only what it changed, and a part
is never stale, whatever wrote the data (a form, the Excel import, an ``update()``).

Right after a change, the plan's three queries run again (prepared once per process:
actions/plan.py ``PLAN_FICHES``, ``PLAN_AXES``, ``PLAN_FINANCEURS``) and the digest of the
rows they read (``Plan.content``) is compared with the one the page stored under the
previous version was rendered for: the same content serves that page again, nothing is
read nor rendered (a change the page does not show: a fiche's description, its indicators).

Round trips weigh more than rendering on a busy machine: the view (actions.views.PlanView)
reads the page (its body, the timeline's CSS, whether the plan is started) in one; right
after a change, the rows, the table by funder, the timeline and its CSS are read in one
(``Fragments``), and the page is stored with the parts rendered again in one (``store``).
"""

import hashlib
import uuid
from collections.abc import Callable

from django.core.cache import InvalidCacheBackendError, cache, caches
from django.db import transaction
from django.db.models import Model
from django.template.loader import get_template

from pvd.cache import code_version as cache_code_version

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


def plan_versions(beneficiaire_id: int) -> tuple[str, str]:
    """The version of the plan's page (the plan, the funders' catalogue and the code) and
    that of its filter form (the catalogue and the code: the form's axes are keyed on apart),
    in one cache round trip."""
    keys = [_version_key(beneficiaire_id), _version_key(CATALOGUE)]
    versions = cache.get_many(keys)
    missing = {key: uuid.uuid4().hex for key in keys if key not in versions}
    if missing:
        cache.set_many(missing, VERSION_TIMEOUT)
    plan, catalogue = ({**versions, **missing}[key] for key in keys)
    return f"{plan}-{catalogue}-{code_version()}", f"{catalogue}-{code_version()}"


def cached_page(beneficiaire_id: int, variant: str) -> tuple[str, str, str, object, tuple | None]:
    """The plan's page as ``plan_versions`` would key it, in one cache round trip (when the
    page fragments share the default cache, as in production): the page's version, the
    version of its filter form, the page's key and what it holds, and the page stored for
    an earlier version with the digest of its content (or None). The page is stored under a
    key of its own (``variant``: the day, the reader's right to edit) with the version it
    was rendered for and its content (``store_page``): it is served as it is only when that
    is the current version, and otherwise again only for the same content (the plan
    changed, not what its page shows)."""
    version_keys = [_version_key(beneficiaire_id), _version_key(CATALOGUE)]
    page_key = f"plan-page:{beneficiaire_id}:{variant}"
    fragments = fragment_cache()
    if fragments is caches["default"]:
        found = cache.get_many([*version_keys, page_key])
    else:
        found = {**cache.get_many(version_keys), **fragments.get_many([page_key])}
    missing = {key: uuid.uuid4().hex for key in version_keys if key not in found}
    if missing:
        cache.set_many(missing, VERSION_TIMEOUT)
    plan, catalogue = ({**found, **missing}[key] for key in version_keys)
    version = f"{plan}-{catalogue}-{code_version()}"
    page = earlier = None
    stored = found.get(page_key)
    if isinstance(stored, tuple) and len(stored) == 3:
        if stored[0] == version:
            page = stored[2]
        else:
            earlier = stored[1:]
    return version, f"{catalogue}-{code_version()}", page_key, page, earlier


def store_page(
    page_key: str, version: str, content: str, page: object, parts: dict[str, object]
) -> None:
    """The page (with the version it was rendered for and the digest of its content) and the
    parts rendered for it, in one round trip."""
    store({**parts, page_key: (version, content, page)})


def plan_version(beneficiaire_id: int) -> str:
    """The version of the plan and of the funders' catalogue, in one cache round trip."""
    return plan_versions(beneficiaire_id)[0]


# The modules that render a plan's page (pvd/cache.py adds what they import and the templates).
RENDERED_BY = ("actions.views",)


def code_version() -> str:
    """A digest of the templates and of the code that render a plan's page."""
    return cache_code_version(*RENDERED_BY)


def fragment_cache():
    """The cache of page fragments, as for the {% cache %} tag."""
    try:
        return caches["template_fragments"]
    except InvalidCacheBackendError:
        return caches["default"]


def render_each(template_name: str, contexts: list[dict]) -> list[str]:
    """The template rendered with each context, taken from the fragment cache in one round
    trip and rendered only for the contexts not there, each keyed on its context's content
    (``content_key``): a fragment is never stale, and a change of the plan renders again
    only the fragments it changed."""
    keys = [f"plan-fragment:{template_name}:{content_key(context)}" for context in contexts]
    store = fragment_cache()
    fragments = store.get_many(keys)
    missing = {
        key: context for key, context in zip(keys, contexts, strict=True) if key not in fragments
    }
    if missing:
        template = get_template(template_name)
        rendered = {key: template.render(context) for key, context in missing.items()}
        store.set_many(rendered, PAGE_TIMEOUT)
        fragments.update(rendered)
    # Rendered templates are SafeStrings, and stay so through the cache's pickling.
    return [fragments[key] for key in keys]


def fiche_row_context(fiche) -> dict:
    """What a fiche's row on the plan's page (templates/actions/includes/fiche_row.html)
    shows, which the row is keyed on (``content_key``): every field and annotation read with
    the fiche (not only ``updated_at``: an ``update()`` or a financing line changes a row
    without it) and its lateness (which changes with the day)."""
    return {"fiche": fiche, "en_retard": fiche.en_retard}


class Fragments:
    """Fragments of a page, each keyed on its content (or on what stands for it), read from
    the fragment cache in one round trip; those missing are rendered and kept in
    ``rendered``, for the page to store in one round trip with its own fragment
    (``store``)."""

    def __init__(self, wanted: dict[str, tuple[str, Callable[[], dict]]]):
        self.fragments = fragment_cache().get_many(list(wanted))
        self.rendered = {
            key: get_template(template_name).render(context())
            for key, (template_name, context) in wanted.items()
            if key not in self.fragments
        }
        # Rendered templates are SafeStrings, and stay so through the cache's pickling.
        self.fragments.update(self.rendered)

    def __getitem__(self, key: str) -> str:
        return self.fragments[key]


def store(fragments: dict[str, object]) -> None:
    """Fragments into the fragment cache, in one round trip."""
    if fragments:
        fragment_cache().set_many(fragments, PAGE_TIMEOUT)


NOT_CONTENT = {"_state", "row"}


def digest(content, *more) -> str:
    """A digest of plain values (their ``repr``: tuples, lists, texts, numbers, dates) and of
    the code that renders what they show."""
    return f"{code_version()}:{hashlib.sha256(repr((content, more)).encode()).hexdigest()}"


def content_key(value) -> str:
    """A digest of what a fragment shows and of the code that renders it: a fragment cached
    under it can never be stale. A model instance stands for every field and annotation read
    with it (and attributes set on it, as a fiche's ``url``), so its template may show any of
    them, but not the fields of a related object (those are not part of the digest)."""
    digest = hashlib.sha256(repr(_content(value)).encode())
    return f"{code_version()}:{digest.hexdigest()}"


def _content(value):
    if isinstance(value, Model):
        # In the order the query set them: the same for the same query and code.
        return [(name, item) for name, item in vars(value).items() if name not in NOT_CONTENT]
    if isinstance(value, dict):
        return [(key, _content(item)) for key, item in value.items()]
    if isinstance(value, list | tuple):
        return [_content(item) for item in value]
    return value
