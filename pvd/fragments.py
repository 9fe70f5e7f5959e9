"""Page fragments cached on their content: a list's rows, a filter form.

A list page runs its queries, then spends most of its time rendering the same rows and
the same filter form again. The view gives the template the plain values a fragment shows
(``rows``: dicts of names, numbers, codes — never model instances, so the template can
show nothing the key does not hold), and the template wraps the fragment in
``{% cache fragment_timeout "name" fragment_key %}`` where ``fragment_key`` is
:func:`content_key` of those values. A fragment is thus keyed on exactly what it shows and
on the code that renders it (the templates, the view's modules): it is never stale,
whatever wrote the data, and never crosses perimeters — a reader gets it only when their
own query returned that very content.
"""

import hashlib

from django.core.cache import cache

from .cache import DATA_REWRITTEN_KEY, code_version

TIMEOUT = 24 * 3600


def content_key(content, *modules: str) -> str:
    """A digest of ``content`` (plain values: its ``repr`` is what it shows) and of the code
    of ``modules`` and the templates."""
    digest = hashlib.sha256(repr(content).encode()).hexdigest()
    return f"{code_version(*modules)}:{digest}"


def form_key(form, request, *modules: str) -> str:
    """The key of a filter form rendered from the request's query: its data, its choices
    (those read from the database by their SQL: the reader's perimeter is in it, a
    préfecture's départements) and the last bulk
    write of the reference data (the territories' names change through the importers only,
    which say so: ``pvd.cache.data_rewritten``). A field whose options are read only when
    needed says what they depend on (``cle_des_choix``: the reader's perimeter) instead."""
    choices = []
    for name, field in form.fields.items():
        if getattr(field, "cle_des_choix", None) is not None:
            choices.append((name, field.cle_des_choix))
        elif getattr(field, "queryset", None) is not None:
            choices.append((name, str(field.queryset.query)))
        elif hasattr(field, "choices"):  # a list (the years offered change with the day)
            choices.append((name, [(str(value), str(label)) for value, label in field.choices]))
    return filter_key(request, choices, *modules)


_READ = object()


def filter_key(request, choices, *modules: str, rewritten=_READ) -> str:
    """The key of a filter form rendered from the request's query, given what its options
    depend on (``choices``, plain values) without building the form (``form_key`` reads a
    built form's): a list whose form comes from the cache then builds none. ``rewritten``:
    the value of ``DATA_REWRITTEN_KEY`` when the view read it already (with the perimeter,
    ``User.prefetch``: one round trip less)."""
    if rewritten is _READ:
        rewritten = cache.get(DATA_REWRITTEN_KEY)
    data = sorted((key, request.GET.getlist(key)) for key in request.GET if key != "page")
    return content_key((data, choices, rewritten), *modules)
