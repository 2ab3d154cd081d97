"""Timestamps in SQL the same on SQLite and PostgreSQL: month and week keys, date orderings."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class month_key(FunctionElement):
    """`YYYY-MM` of a timestamp (NULL for NULL)."""

    type = String()
    name = "month_key"
    inherit_cache = True


class week_key(FunctionElement):
    """`YYYY-MM-DD` of the Monday beginning a timestamp's week (NULL for NULL)."""

    type = String()
    name = "week_key"
    inherit_cache = True


# The format strings are SQL literals, not bound parameters: a query that groups by the key
# repeats the expression, and PostgreSQL matches GROUP BY to SELECT by the text of the
# expression (two placeholders, $1 and $2, would be two different expressions to it).
def _arg(compiler, element, **kw) -> str:
    (column,) = element.clauses
    return compiler.process(column, **kw)


@compiles(month_key)
def _month_sqlite(element, compiler, **kw):
    return f"strftime('%Y-%m', {_arg(compiler, element, **kw)})"


@compiles(month_key, "postgresql")
def _month_postgresql(element, compiler, **kw):
    return f"to_char({_arg(compiler, element, **kw)}, 'YYYY-MM')"


@compiles(week_key)
def _week_sqlite(element, compiler, **kw):
    # The next Sunday (or the day itself), six days back: the week's Monday.
    return f"date({_arg(compiler, element, **kw)}, 'weekday 0', '-6 days')"


@compiles(week_key, "postgresql")
def _week_postgresql(element, compiler, **kw):
    # date_trunc('week') begins weeks on Monday (ISO), as the SQLite form does.
    return f"to_char(date_trunc('week', {_arg(compiler, element, **kw)}), 'YYYY-MM-DD')"


# Undated rows sort where SQLite puts NULLs (first going up, last going down); PostgreSQL's
# default is the opposite, which would put undated messages on top of "latest" lists and
# change which thread a reply without references joins.
def by_date(column: ColumnElement) -> ColumnElement:
    return column.asc().nulls_first()


def by_date_desc(column: ColumnElement) -> ColumnElement:
    return column.desc().nulls_last()
