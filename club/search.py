"""The Club's search across all towns' fiches (the read rule: ``FicheAction.objects.club_for``).

On PostgreSQL: French full text on the generated ``recherche`` column (actions migration
0010), ``websearch_to_tsquery`` (quotes, ``-``, ``OR``; never an error on odd input), ranked;
when the words find nothing, trigram word similarity on titles and town names (typos). On
SQLite (``make run``) every word must appear in the title, the description, the axis or the
town (``icontains``).

Highlighted extracts: ``ts_headline`` does not escape, so it marks the matches with two
control characters; ``surligner`` escapes the text, then turns them into ``<mark>``.
"""

import re

from django.db import connection
from django.db.models import BooleanField, FloatField, Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

START, STOP = "\x02", "\x03"
TSQUERY = "websearch_to_tsquery('french_unaccent', %s)"
EXTRAIT = (
    f"StartSel={START}, StopSel={STOP}, MaxFragments=2, MinWords=8, MaxWords=30, "
    'FragmentDelimiter=" … "'
)
TITRE = f"StartSel={START}, StopSel={STOP}, HighlightAll=true"
LONGUEUR_EXTRAIT = 40  # words of the description when nothing is highlighted
MAX_QUERY = 200  # characters of a search kept

FICHE = "actions_ficheaction"


def full_text() -> bool:
    return connection.vendor == "postgresql"


def chercher(fiches: QuerySet, q: str) -> QuerySet:
    """The fiches matching ``q``, best first (newest first without ``q``)."""
    q = nettoyer(q)
    if not q:
        return fiches.order_by("-pk")
    if not full_text():
        return chercher_sans_index(fiches, q)
    words = RawSQL(f"{FICHE}.recherche @@ {TSQUERY}", [q], output_field=BooleanField())
    # Trigrams only when the words find nothing (a typo): they cost more than the GIN index
    # of the words, and would add loose matches to a search that already has good ones.
    typo = RawSQL(
        f"(%s <%% {FICHE}.titre"
        # An array from an InitPlan, not IN (subquery): each branch of the OR then uses its
        # index (trigram GIN, the beneficiary's foreign key), in a BitmapOr.
        f" OR {FICHE}.beneficiaire_id = ANY(ARRAY("
        "SELECT b.id FROM communes_beneficiaire b WHERE %s <%% b.nom)))",
        [q, q],
        output_field=BooleanField(),
    )
    if fiches.alias(correspond=words).filter(correspond=True).exists():
        match = words
        rank = RawSQL(f"ts_rank({FICHE}.recherche, {TSQUERY})", [q], output_field=FloatField())
    else:
        match = typo
        rank = RawSQL(f"word_similarity(%s, {FICHE}.titre)", [q], output_field=FloatField())
    return fiches.alias(correspond=match, rang=rank).filter(correspond=True).order_by("-rang", "pk")


def nettoyer(q: str) -> str:
    return " ".join((q or "").split())[:MAX_QUERY]


def avec_extraits(fiches: QuerySet, q: str) -> QuerySet:
    """``titre_surligne`` and ``extrait_surligne``, marked with the sentinels: asked for the
    page's fiches only (``ts_headline`` is costly, and PostgreSQL would compute it for every
    row an OFFSET skips)."""
    q = nettoyer(q)
    if not q or not full_text():
        return fiches
    return fiches.annotate(
        titre_surligne=RawSQL(
            f"ts_headline('french_unaccent', {FICHE}.titre, {TSQUERY}, %s)",
            [q, TITRE],
            output_field=TextField(),
        ),
        extrait_surligne=RawSQL(
            f"ts_headline('french_unaccent', {FICHE}.description, {TSQUERY}, %s)",
            [q, EXTRAIT],
            output_field=TextField(),
        ),
    )


def chercher_sans_index(fiches: QuerySet, q: str) -> QuerySet:
    """The fallback without PostgreSQL: each word somewhere in the fiche, unranked."""
    for word in q.replace('"', " ").split():
        if word.startswith("-") or word.upper() == "OR":
            continue  # the full-text syntax has no meaning here
        fiches = fiches.filter(
            Q(titre__icontains=word)
            | Q(description__icontains=word)
            | Q(axe__nom__icontains=word)
            | Q(beneficiaire__nom__icontains=word)
        )
    return fiches.order_by("beneficiaire__nom", "axe__numero", "reference")


def surligner(text: str) -> SafeString:
    """``text`` escaped, its parts between the sentinels in ``<mark>``."""
    parts = re.split(f"{START}(.*?){STOP}", text or "", flags=re.S)
    pieces = []
    for i, part in enumerate(parts):
        part = part.replace(START, "").replace(STOP, "")
        pieces.append(format_html("<mark>{}</mark>", part) if i % 2 else escape(part))
    return format_html_join("", "{}", ((piece,) for piece in pieces))


def extrait(fiche) -> SafeString:
    """The highlighted extract of a result, or the start of its description."""
    marked = getattr(fiche, "extrait_surligne", "")
    if marked and START in marked:
        return surligner(marked)
    return surligner(Truncator(fiche.description).words(LONGUEUR_EXTRAIT, truncate=" …"))


def titre(fiche) -> SafeString:
    return surligner(getattr(fiche, "titre_surligne", "") or fiche.titre)
