"""The Club's search across all towns' fiches (the read rule: ``FicheAction.objects.club_for``).

On PostgreSQL: French full text on the generated ``recherche`` column (actions migration
0010), ``websearch_to_tsquery`` (quotes, ``-``, ``OR``; never an error on odd input), ranked;
when the words find nothing, ``corriger`` replaces each word the Club's lexicon does not know
by its nearest neighbour there (trigrams; actions migration 0012) and, for plain words, asks
for any of them rather than all, then the full-text index searches again. On
SQLite (``make run``) every word must appear in the title, the description, the axis or the
town (``icontains``).

The page (``Candidats``) ranks and counts at most ``PLAFOND`` + 1 fiches: the first the GIN
index finds, in one query that gives the page's ids and the count together. A broad word
(« rénovation »: 12,000 fiches of the national bench data) then costs what a narrow one
does; the page says « Plus de 1 000 fiches action » and the export still holds them all.

Highlighted extracts: ``ts_headline`` does not escape, so it marks the matches with two
control characters; ``surligner`` escapes the text, then turns them into ``<mark>``.
"""

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, F, FloatField, Q, QuerySet, TextField, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from pvd.db import Gardees, Valeur, avec_valeurs

START, STOP = "\x02", "\x03"
SURLIGNE = re.compile(f"{START}(.*?){STOP}", re.S)
TSQUERY = "websearch_to_tsquery('french_unaccent', %s)"
EXTRAIT = (
    f"StartSel={START}, StopSel={STOP}, MaxFragments=2, MinWords=8, MaxWords=30, "
    'FragmentDelimiter=" … "'
)
TITRE = f"StartSel={START}, StopSel={STOP}, HighlightAll=true"
LONGUEUR_EXTRAIT = 40  # words of the description when nothing is highlighted
MAX_QUERY = 200  # characters of a search kept
PLAFOND = 1000  # fiches a page ranks and counts at most (« Plus de 1 000 fiches action »)

FICHE = "actions_ficheaction"


def full_text() -> bool:
    return connection.vendor == "postgresql"


def chercher(fiches: QuerySet, q: str) -> QuerySet:
    """All the fiches matching ``q``, best first (newest first without ``q``): the export.
    The page pages ``Candidats`` instead."""
    q = nettoyer(q)
    if not q:
        return fiches.order_by("-pk")
    if not full_text():
        return chercher_sans_index(fiches, q)
    candidats = Candidats(fiches, q, 0, 1)
    candidats.count()  # the words, or the nearest ones
    return par_mots(candidats.q_effectif).classer(fiches)


@dataclass(frozen=True)
class Critere:
    """How the words match and rank fiches."""

    correspond: RawSQL
    rang: RawSQL

    def classer(self, fiches: QuerySet) -> QuerySet:
        return (
            fiches.alias(correspond=self.correspond, rang=self.rang)
            .filter(correspond=True)
            .order_by("-rang", "pk")
        )


def par_mots(q: str) -> Critere:
    return Critere(
        RawSQL(f"{FICHE}.recherche @@ {TSQUERY}", [q], output_field=BooleanField()),
        RawSQL(f"ts_rank({FICHE}.recherche, {TSQUERY})", [q], output_field=FloatField()),
    )


MOT = re.compile(r"[^\W_]+")
DISTANCE_MAX = 0.6  # trigram distance (1 - similarity) of a correction, at most
CORRIGER = f"""
SELECT (SELECT m.mot FROM actions_club_mot m
         WHERE (m.mot <-> lower(unaccent(brut))) <= {DISTANCE_MAX}
         ORDER BY m.mot <-> lower(unaccent(brut)) LIMIT 1)
  FROM unnest(%s::text[]) WITH ORDINALITY AS t(brut, rang) ORDER BY rang
"""


def corriger(q: str) -> str:
    """``q`` with each word replaced by the nearest word of the lexicon (itself when known; kept
    when nothing is near), in one query; plain words (no quotes, ``-`` nor ``OR``) then asked
    for one of them at least (« rénovation friche » finds the fiches that have either).
    A word after ``-`` is kept as typed."""
    mots = [
        m
        for m in MOT.finditer(q)
        if len(m.group()) >= 3 and m.group().upper() != "OR" and q[m.start() - 1 : m.start()] != "-"
    ]
    if not mots:
        return q
    with connection.cursor() as cursor:
        cursor.execute(CORRIGER, [[m.group() for m in mots]])
        proches = [row[0] for row in cursor.fetchall()]
    corrige, fin = [], 0
    for m, proche in zip(mots, proches, strict=True):
        corrige += [q[fin : m.start()], proche or m.group()]
        fin = m.end()
    corrige.append(q[fin:])
    corrige = "".join(corrige)
    simples = not any(c in q for c in '"-') and not re.search(r"\bOR\b", q, re.I)
    if simples and len(mots) > 1:
        return " or ".join(proche or m.group() for m, proche in zip(mots, proches, strict=True))
    return corrige


@dataclass(frozen=True)
class Requete:
    """The candidates' SQL: columns ``id`` and ``rang``, ranked by ``rang`` ``sens``."""

    sql: str
    params: tuple
    sens: str

    def avec(self, valeurs: dict) -> "Requete":
        """This query, prepared, with the values of its slots (``Valeur``)."""
        return Requete(self.sql, tuple(avec_valeurs(self.params, valeurs)), self.sens)


@dataclass(frozen=True)
class Fiches:
    """The fiches a search page reads, prepared: ``construire`` gives their queryset (the
    visibility rule, ``club_for``, and the facets chosen) with a slot (``Parametre``) for
    each value ``valeurs`` holds; ``cle`` is all that shapes its SQL (the reader's
    perimeter, the facets chosen and those of their values that change the SQL). The
    candidates' query is compiled once per process for each ``cle`` (``PREPAREES``), then
    run with the values: building and compiling it cost more than running it."""

    cle: Hashable
    valeurs: dict
    construire: Callable[[], QuerySet]


PREPAREES = Gardees(500)  # compiled candidates' queries (a few kilobytes each)


class Candidats:
    """What the search page's paginator pages: the ids of the fiches, ranked, and their count,
    both bounded by ``plafond`` (``depasse`` says there were more).

    With words (PostgreSQL), the candidates are the first ``plafond`` + 1 matches the index
    finds (a ``MATERIALIZED`` CTE: planned for all its rows, hence the bitmap of the GIN index
    rather than a sequential scan betting on a ``LIMIT``; read only as far as the ``LIMIT``),
    ranked among themselves; the nearest words when they find nothing. Without words (or on
    SQLite), the first ``plafond`` + 1 in the list's order (newest first). One query gives the
    count and a page's ids (the count even beyond the last page): the paginator asks the
    count, then the page expected from ``page`` (``debut``), already read."""

    def __init__(
        self, fiches: "QuerySet | Fiches", q: str, debut: int, taille: int, plafond: int = 0
    ):
        self.fiches = fiches
        self.q = nettoyer(q)
        self.debut, self.taille, self.plafond = debut, taille, plafond or PLAFOND
        self.q_effectif = self.q  # the words searched: ``q``, or the nearest ones
        self.total: int | None = None
        self.requete: Requete | None = None
        self.lues: dict[int, list[int]] = {}  # the ids read, by the rank they start at

    @property
    def depasse(self) -> bool:
        self.count()
        return self.total > self.plafond

    def count(self) -> int:
        if self.total is None:
            self.decider()
        return min(self.total, self.plafond)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, tranche: slice) -> list[int]:
        """A page's ids (the paginator asks one page, after the count)."""
        self.count()
        debut, fin = tranche.start or 0, min(tranche.stop, self.plafond)
        if debut not in self.lues:
            self.lues[debut] = self.lire(self.requete, debut, debut + self.taille)[0]
        return self.lues[debut][: fin - debut]

    def decider(self) -> None:
        """The words; when they find nothing, the nearest ones (``corriger``), kept if they find
        something (a correction that finds nothing is never shown: it could only come from
        a fiche the user may not read). The page expected is read on the way."""
        self.requete = self.premiere_requete()
        ids, self.total = self.lire(self.requete, self.debut, self.debut + self.taille)
        if not self.total and self.q and full_text() and self.requete is not None:
            proche = corriger(self.q)
            if proche != self.q:
                requete = self.requete_pour(proche)
                ids_proches, total = self.lire(requete, self.debut, self.debut + self.taille)
                if total:
                    self.requete, self.total, self.q_effectif = requete, total, proche
                    ids = ids_proches
        if ids or not self.total:
            self.lues[self.debut] = ids

    def premiere_requete(self) -> "Requete | None":
        return self.requete_pour(self.q)

    def requete_pour(self, q: str) -> "Requete | None":
        """The candidates' query for the words ``q`` (typed, or the nearest ones)."""
        if not isinstance(self.fiches, Fiches):
            return self.compiler(self.fiches, q)
        fiches = self.fiches
        valeurs = {**fiches.valeurs, "q": q}
        if not full_text():  # SQLite (the demo): a filter for each word, compiled each time
            requete = self.compiler(fiches.construire(), q)
        else:
            cle = (fiches.cle, bool(q), self.plafond)
            mots = Valeur("q") if q else ""
            requete = PREPAREES.get(cle, lambda: self.compiler(fiches.construire(), mots))
        return requete.avec(valeurs) if requete is not None else None

    def compiler(self, fiches: QuerySet, q: "str | Valeur") -> "Requete | None":
        if fiches.query.is_empty():  # a filter is invalid
            return None
        if not q:
            return self.dans_l_ordre(fiches.order_by("-pk"))
        if not full_text():
            return self.dans_l_ordre(chercher_sans_index(fiches, q))
        return self.par_pertinence(fiches, par_mots(q))

    def dans_l_ordre(self, fiches: QuerySet) -> "Requete":
        """The first ``plafond`` + 1 in the list's order; ``rang`` their position."""
        ordering = fiches.query.order_by
        numbered = fiches.annotate(
            rang_liste=Window(RowNumber(), order_by=[ordre(field) for field in ordering])
        ).values_list("pk", "rang_liste")[: self.plafond + 1]
        sql, params = numbered.query.sql_with_params()
        return Requete(
            f"WITH liste (id, rang) AS ({sql}) SELECT id, rang FROM liste", params, "ASC"
        )

    def par_pertinence(self, fiches: QuerySet, critere: Critere) -> "Requete":
        matches = (
            fiches.alias(correspond=critere.correspond)
            .filter(correspond=True)
            .annotate(rang_pertinence=critere.rang)
            .values_list("pk", "rang_pertinence")
            .order_by()
        )
        sql, params = matches.query.sql_with_params()
        return Requete(
            f"WITH candidats (id, rang) AS MATERIALIZED ({sql}) "
            f"SELECT id, rang FROM candidats LIMIT {self.plafond + 1:d}",
            params,
            "DESC",
        )

    def lire(self, requete: "Requete | None", debut: int, fin: int) -> tuple[list[int], int]:
        """The ids ranked ``debut`` to ``fin`` (0-based, end excluded), and the count."""
        if requete is None:
            return [], 0
        # The count, and the page's rows beside it (none beyond the end): a sort bounded
        # by the page's end (top-N) rather than a numbering of every candidate.
        sql = (
            f"WITH r AS ({requete.sql}) SELECT c.total, p.id FROM (SELECT COUNT(*) AS total "
            f"FROM r) c LEFT JOIN (SELECT id, rang FROM r ORDER BY rang {requete.sens}, id "
            f"LIMIT %s OFFSET %s) p ON TRUE ORDER BY p.rang {requete.sens}, p.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*requete.params, fin - debut, debut])
            rows = cursor.fetchall()
        total = rows[0][0]
        ids = [pk for _, pk in rows if pk is not None]
        return ids, total


def ordre(field: str):
    return F(field[1:]).desc() if field.startswith("-") else F(field).asc()


def nettoyer(q: str) -> str:
    return " ".join((q or "").split())[:MAX_QUERY]


def surlignages(q) -> dict[str, RawSQL]:
    """``titre_surligne`` and ``extrait_surligne``, the matches of ``q`` (the words, or a
    prepared query's slot) marked with the sentinels: asked for the page's fiches only
    (``ts_headline`` is costly, and PostgreSQL would compute it for every row an OFFSET
    skips); PostgreSQL only (``full_text``)."""
    return {
        "titre_surligne": RawSQL(
            f"ts_headline('french_unaccent', {FICHE}.titre, {TSQUERY}, %s)",
            [q, TITRE],
            output_field=TextField(),
        ),
        "extrait_surligne": RawSQL(
            f"ts_headline('french_unaccent', {FICHE}.description, {TSQUERY}, %s)",
            [q, EXTRAIT],
            output_field=TextField(),
        ),
    }


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
    parts = SURLIGNE.split(text or "")
    markup = "".join("<mark>{}</mark>" if i % 2 else "{}" for i in range(len(parts)))
    return format_html(markup, *(part.replace(START, "").replace(STOP, "") for part in parts))


def extrait(fiche) -> SafeString:
    """The highlighted extract of a result, or the start of its description."""
    marked = getattr(fiche, "extrait_surligne", "")
    if marked and START in marked:
        return surligner(marked)
    return surligner(Truncator(fiche.description).words(LONGUEUR_EXTRAIT, truncate=" …"))


def titre(fiche) -> SafeString:
    return surligner(getattr(fiche, "titre_surligne", "") or fiche.titre)
