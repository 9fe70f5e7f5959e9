"""Expressions that PostgreSQL has and the embedded SQLite demo (``make run``) lacks.

Production and the test suite run on PostgreSQL; ``make run`` runs on SQLite by default.
Each expression here compiles to PostgreSQL's own SQL there and to an SQLite equivalent
otherwise, so that the read-models write one query for both.
"""

import json

from django.contrib.postgres.aggregates import StringAgg as PostgresStringAgg
from django.contrib.postgres.expressions import ArraySubquery as PostgresArraySubquery
from django.db.models import Aggregate, DateField, Func, TextField


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
