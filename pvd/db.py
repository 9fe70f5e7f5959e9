"""Expressions that PostgreSQL has and the embedded SQLite demo (``make run``) lacks.

Production and the test suite run on PostgreSQL; ``make run`` runs on SQLite by default.
Each expression here compiles to PostgreSQL's own SQL there and to an SQLite equivalent
otherwise, so that the read-models write one query for both.
"""

import contextlib
import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from django.contrib.postgres.aggregates import StringAgg as PostgresStringAgg
from django.contrib.postgres.expressions import ArraySubquery as PostgresArraySubquery
from django.db import connections
from django.db.models import (
    Aggregate,
    BooleanField,
    DateField,
    Expression,
    Field,
    Func,
    QuerySet,
    Subquery,
    TextField,
)


class ArraySubquery(PostgresArraySubquery):
    """The values of a one-column subquery as a list: ``ARRAY(subquery)`` on PostgreSQL,
    ``json_group_array`` over the subquery on SQLite (in the subquery's order)."""

    def _column(self) -> str:
        query = self.query
        return (
            query.values_select[0] if query.values_select else next(iter(query.annotation_select))
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        template = f'(SELECT json_group_array("{self._column()}") FROM (%(subquery)s))'
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def get_db_converters(self, connection):
        converters = super().get_db_converters(connection)
        if connection.vendor != "sqlite":
            return converters
        base_field = self.output_field.base_field

        def from_json(value, expression, connection):
            if value is None:
                return []
            return [base_field.to_python(item) for item in json.loads(value)]

        return [from_json, *converters]


class _GroupConcat(Aggregate):
    function = "GROUP_CONCAT"
    allow_distinct = True
    output_field = TextField()


class StringAgg(PostgresStringAgg):
    """Texts joined by a delimiter: ``STRING_AGG`` (in the order asked) on PostgreSQL,
    ``GROUP_CONCAT`` on SQLite (which keeps no asked order)."""

    def as_sqlite(self, compiler, connection, **extra_context):
        expression, delimiter, *_ = self.get_source_expressions()
        concat = _GroupConcat(expression, delimiter, filter=self.filter, distinct=self.distinct)
        return compiler.compile(concat)


class AddMonths(Func):
    """A date plus whole months: ``date + interval 'n months'`` on PostgreSQL (the end of a
    shorter month when the day does not exist), ``date(d, '+n months')`` on SQLite (which
    rolls over into the next month instead: the demo only)."""

    output_field = DateField()

    def __init__(self, expression, months: int, **extra):
        self.months = int(months)
        super().__init__(expression, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        template = f"(%(expressions)s + interval '{self.months} months')::date"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        template = f"date(%(expressions)s, '+{self.months} months')"
        return super().as_sql(compiler, connection, template=template, **extra_context)


class AddMonthsOf(Func):
    """A date plus a number of months computed per row (an expression, e.g. from a column):
    ``date + make_interval(months => n)`` on PostgreSQL, ``date(d, '+n months')`` on SQLite.
    One expression whatever the values of n (a ``Case`` of ``AddMonths`` repeats the date's
    SQL once per value)."""

    output_field = DateField()
    arity = 2

    def _compiled(self, compiler):
        (date, date_params), (months, months_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        return date, months, (*date_params, *months_params)

    def as_sql(self, compiler, connection, **extra_context):
        date, months, params = self._compiled(compiler)
        return f"({date} + make_interval(months => {months}))::date", params

    def as_sqlite(self, compiler, connection, **extra_context):
        date, months, params = self._compiled(compiler)
        return f"date({date}, '+' || ({months}) || ' months')", params


class Valeur:
    """A slot of a prepared query (``Preparee``): a parameter given at each run, by name.
    ``en_json``: a list written as JSON text (``DansLaListe`` on SQLite); ``champ``: the
    model field that adapts the value for the database (a date on SQLite)."""

    __slots__ = ("nom", "en_json", "champ")

    def __init__(self, nom: str, en_json: bool = False, champ: Field | None = None):
        self.nom, self.en_json, self.champ = nom, en_json, champ

    def __repr__(self) -> str:
        return f"Valeur({self.nom!r})"


class Parametre(Expression):
    """A ``Valeur`` slot where a queryset expects a value, compiled to one parameter filled
    at each run of a ``Preparee`` (or by ``avec_valeurs``):
    ``filter(date_fin_prevue__lt=Parametre("jour", DateField()))``. With ``output_field``,
    that field adapts the value for the database (a date on SQLite); without, the value is
    passed as it is (text)."""

    def __init__(self, nom: str, output_field: Field | None = None):
        super().__init__(output_field=output_field or TextField())
        self.nom = nom
        self.champ = output_field

    @property
    def identity(self):
        return (Parametre, self.nom)

    def as_sql(self, compiler, connection, **extra_context):
        return "%s", [Valeur(self.nom, champ=self.champ)]

    def get_group_by_cols(self):
        return []


class DansLaListe(Func):
    """``expression`` among the values of a list passed as one parameter: ``= ANY(%s)`` on
    PostgreSQL, ``IN (SELECT value FROM json_each(%s))`` on SQLite; the same SQL whatever
    the list's length (``pk__in`` writes one placeholder per value). ``deplier``: on
    PostgreSQL, ``IN (SELECT unnest(%s))`` instead, for a long list (a thousand values and
    more): the planner estimates ``= ANY`` value by value (milliseconds for 1 500 ids), an
    ``unnest`` by its length."""

    output_field = BooleanField()

    def __init__(self, expression, valeurs, deplier: bool = False):
        super().__init__(expression)
        self.valeurs = valeurs
        self.deplier = deplier

    def as_sql(self, compiler, connection, **extra_context):
        expression = self.get_source_expressions()[0]
        sql, params = compiler.compile(expression)
        if self.deplier:
            type_ = expression.output_field.cast_db_type(connection)
            return f"{sql} IN (SELECT unnest(%s::{type_}[]))", (*params, self.valeurs)
        return f"{sql} = ANY(%s)", (*params, self.valeurs)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.get_source_expressions()[0])
        valeurs = self.valeurs
        valeurs = (
            Valeur(valeurs.nom, en_json=True)
            if isinstance(valeurs, Valeur)
            else json.dumps(list(valeurs))
        )
        return f"{sql} IN (SELECT value FROM json_each(%s))", (*params, valeurs)


class DansLaSousRequete(Func):
    """``expression`` among the values of a one-column subquery of a few rows, read first as
    an array: ``= ANY(ARRAY(subquery))`` on PostgreSQL (an InitPlan run once, then the
    index on ``expression`` finds the rows, even in a disjunction, where ``IN (subquery)``
    there filters every row against the subquery's), ``IN (subquery)`` on SQLite."""

    output_field = BooleanField()

    def __init__(self, expression, queryset: QuerySet):
        super().__init__(expression, Subquery(queryset.order_by()))

    def as_sql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, template="%(expressions)s)", arg_joiner=" = ANY(ARRAY"
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, template="%(expressions)s", arg_joiner=" IN ")


def _valeur(slot: Valeur, valeurs: dict, connection):
    value = valeurs[slot.nom]
    if slot.en_json:
        return json.dumps(list(value))
    if slot.champ is not None and connection is not None:
        return slot.champ.get_db_prep_value(value, connection)
    return value


class Preparee:
    """A queryset built and compiled once per process, database and variant, then run again
    with other values in its ``Valeur`` slots: for a page of twenty rows, building and
    compiling a queryset with subqueries costs several times what running it costs. Rows
    come back as ``values_list`` gives them (the fields' converters applied). ``construire``
    takes the variant and returns a ``values_list`` queryset whose parameters that change
    from run to run are ``Valeur`` slots; any other parameter is kept as compiled."""

    def __init__(self, construire: Callable[[Hashable], QuerySet], litterale: bool = False):
        """``litterale``: a query without ``Valeur`` slots whose values PostgreSQL plans
        better knowing them (a perimeter's codes) is written with its values in its SQL
        (quoted by psycopg): its statement, prepared on the connection, is then planned once
        (with parameters, PostgreSQL plans it again at every run when a plan made for any
        values would cost more)."""
        self.construire = construire
        self.litterale = litterale
        self.compilees: dict = {}

    def compilee(self, variante: Hashable = None, using: str = "default") -> tuple:
        """The query's SQL, its parameters (``Valeur`` slots among them) and its rows'
        converters, compiled on the first call for this database and variant."""
        connection = connections[using]
        cle = (using, connection.vendor, variante)
        compilee = self.compilees.get(cle)
        if compilee is None:
            compiler = self.construire(variante).query.get_compiler(using=using)
            sql, params = compiler.as_sql()
            if self.litterale and connection.vendor == "postgresql":
                if any(isinstance(param, Valeur) for param in params):
                    raise ValueError("A query written with its values has no Valeur slot.")
                from psycopg import ClientCursor  # PostgreSQL only: not in the SQLite demo

                connection.ensure_connection()
                sql, params = ClientCursor(connection.connection).mogrify(sql, params), ()
            colonnes = [col for col, _, _ in compiler.select[: compiler.col_count]]
            compilee = self.compilees[cle] = (sql, params, compiler.get_converters(colonnes))
        return compilee

    def lignes(self, variante: Hashable = None, using: str = "default", **valeurs) -> list:
        connection = connections[using]
        sql, params, converters = self.compilee(variante, using)
        params = avec_valeurs(params, valeurs, connection)
        with connection.cursor() as cursor:
            # No parameters: None, so that a « % » written in the SQL is left as it is.
            cursor.execute(sql, avec_valeurs(params, valeurs, connection) or None)
            rows = cursor.fetchall()
        return convertir(rows, converters, connection)


def convertir(rows: list, converters: dict, connection) -> list:
    """Rows as ``values_list`` gives them: the fields' converters applied."""
    if not converters:
        return rows
    converted = []
    for row in rows:
        row = list(row)
        for position, (functions, expression) in converters.items():
            value = row[position]
            for function in functions:
                value = function(value, expression, connection)
            row[position] = value
        converted.append(row)
    return converted


def ensemble(*requetes: tuple[Preparee, Hashable, dict], using: str = "default") -> list:
    """The rows of several prepared queries, each given as (query, variant, values), as
    ``Preparee.lignes`` gives them, in one round trip to PostgreSQL: sent together
    (psycopg's pipeline) and bound by the server, which keeps each statement prepared on the
    connection (``prepare_threshold``, pvd/settings.py): its plan is not made again at each
    run, most of what such small queries cost PostgreSQL. Each statement is logged and
    counted as any query. One after another elsewhere (SQLite)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return [
            preparee.lignes(variante, using, **valeurs) for preparee, variante, valeurs in requetes
        ]
    compilees = [preparee.compilee(variante, using) for preparee, variante, _ in requetes]
    cursors = []
    try:
        with connection.wrap_database_errors:
            cursors = [_curseur_lie_par_le_serveur(connection) for _ in compilees]
            with connection.connection.pipeline():
                for cursor, (sql, params, _), (_, _, valeurs) in zip(
                    cursors, compilees, requetes, strict=True
                ):
                    cursor.execute(sql, avec_valeurs(params, valeurs, connection) or None)
            lignes = [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()
    return [
        convertir(rows, converters, connection)
        for rows, (_, _, converters) in zip(lignes, compilees, strict=True)
    ]


@contextlib.contextmanager
def liees_par_le_serveur(using: str = "default"):
    """Django's queries in this block bound by PostgreSQL, which keeps each one prepared on
    the connection after a few runs (``prepare_threshold``): a list page's count and rows,
    whose plan costs more than their run. Only for queries whose parameters the server may
    bind (not one repeated in a GROUP BY, which a bound parameter no longer matches: the
    tests of the page say so). Client-bound, as always, elsewhere (SQLite, no threshold)."""
    connection = connections[using]
    options = connection.settings_dict.get("OPTIONS", {})
    if connection.vendor != "postgresql" or options.get("prepare_threshold") is None:
        yield
        return
    connection.ensure_connection()
    brute = connection.connection
    lie, journalise = _curseurs_lies()
    avant = brute.cursor_factory

    def curseur(*args, **kwargs):  # logged as Django logs it, when it does (DEBUG, tests)
        return (journalise if connection.queries_logged else lie)(*args, **kwargs)

    brute.cursor_factory = curseur
    try:
        yield
    finally:
        brute.cursor_factory = avant


class Lot:
    """The prepared queries a page will read, sent together (``ensemble``: one round trip)
    the first time one of them is read: a page whose cached fragments missed announces the
    queries of each (``annonce``) once it knows which missed, and each part reads its own
    (``lignes``) where it needs them. A query read but not announced is sent then, with those
    still waiting; a query is identified by (query, variant, values)."""

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self.attente: dict = {}
        self.lues: dict = {}

    @staticmethod
    def _cle(requete: tuple) -> tuple:
        preparee, variante, valeurs = requete
        return (id(preparee), variante, repr(sorted(valeurs.items())))

    def annonce(self, *requetes: tuple[Preparee, Hashable, dict]) -> None:
        for requete in requetes:
            self.attente[self._cle(requete)] = requete

    def lignes(self, requete: tuple[Preparee, Hashable, dict]) -> list:
        """The rows of the query (query, variant, values), as ``ensemble`` gives them."""
        cle = self._cle(requete)
        if cle not in self.lues:
            self.attente[cle] = requete
            cles = list(self.attente)
            resultats = ensemble(*self.attente.values(), using=self.using)
            self.lues.update(zip(cles, resultats, strict=True))
            self.attente.clear()
        return self.lues.pop(cle)

    def ensemble(self, *requetes: tuple[Preparee, Hashable, dict]) -> list:
        """The rows of each query, as ``ensemble`` gives them, sent with those waiting."""
        self.annonce(*requetes)
        return [self.lignes(requete) for requete in requetes]


def _curseur_lie_par_le_serveur(connection):
    """A Django cursor (logged and counted as any other) whose parameters PostgreSQL binds
    (Django's own bind them in the client, which psycopg never prepares)."""
    lie, journalise = _curseurs_lies()
    cursor = connection.cursor()
    cursor.cursor.close()
    cursor.cursor = (journalise if connection.queries_logged else lie)(connection.connection)
    return cursor


@functools.cache
def _curseurs_lies() -> tuple[type, type]:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class Journalise(ServerBindingCursor):
        """Keeps, for Django's log of queries, the query of a prepared statement, which
        psycopg forgets (``_query``: what Django's ``last_executed_query`` reads)."""

        def execute(self, query, params=None, **kwargs):
            super().execute(query, params, **kwargs)
            if self._query is None:
                self._query = self._convert_query(query, params)
            return self

    return ServerBindingCursor, Journalise


def avec_valeurs(params, valeurs: dict, connection=None) -> list:
    """``params`` of a prepared query, each ``Valeur`` slot replaced by its value in
    ``valeurs`` (a list as JSON text for an ``en_json`` slot, adapted by its field for
    ``connection`` if it has one); any other kept as it is."""
    return [_valeur(p, valeurs, connection) if isinstance(p, Valeur) else p for p in params]


class Gardees:
    """At most ``taille`` values built once each, by key, per process (SQL compiled once for
    each shape of a query): the least recently used is dropped first. Thread-safe (gunicorn's
    threads share a process); two threads may build the same value at once, one is kept."""

    def __init__(self, taille: int):
        self.taille = taille
        self.valeurs: OrderedDict = OrderedDict()
        self.verrou = threading.Lock()

    def __len__(self) -> int:
        return len(self.valeurs)

    def get(self, cle: Hashable, construire: Callable[[], object]):
        with self.verrou:
            if cle in self.valeurs:
                self.valeurs.move_to_end(cle)
                return self.valeurs[cle]
        valeur = construire()
        with self.verrou:
            self.valeurs[cle] = valeur
            self.valeurs.move_to_end(cle)
            while len(self.valeurs) > self.taille:
                self.valeurs.popitem(last=False)
        return valeur
