"""Which result columns can be NULL, for ``vdata check``.

A column is NOT NULL when it is a plain reference to a table column the
catalog marks NOT NULL, and that table is not on the nullable side of an
outer join; anything else can be NULL unless the doc comment says
``-- not-null: col_a, col_b``. The table behind each column comes from the
RowDescription's table oid and column number, which asyncpg keeps private
and libpq exposes (``PQftable``/``PQftablecol``, through psycopg's ``pq``).
"""

from __future__ import annotations

__all__ = ["column_nullability", "not_null_marks", "result_origins"]

import re
import typing
from typing import Any

from vdata.check.blocks import strip_hidden

_OUTER_JOIN = re.compile(
    r"\b(LEFT|RIGHT|FULL)\s+(?:OUTER\s+)?JOIN\s+(LATERAL\s+)?(\(|[\w.\"]+)", re.IGNORECASE
)
_ALL = -1  # "every table of this query is on a nullable side"
_EXPRESSION = "not a plain table column: an expression, aggregate or UNION"
_NOT_NULL = re.compile(r"^not-null\s*:\s*(.*)$", re.IGNORECASE)


def not_null_marks(doc: str | typing.Sequence[str]) -> set[str]:
    """Return the columns a doc comment's ``not-null:`` lines declare never NULL."""
    lines = doc.splitlines() if isinstance(doc, str) else doc
    marks: set[str] = set()
    for line in lines:
        match = _NOT_NULL.match(line.strip().lstrip("-").strip())
        if match:
            marks.update(n for n in re.split(r"[\s,]+", match.group(1)) if n)
    return marks


def result_origins(dsn: str, statements: list[str]) -> list[list[tuple[int, int]] | None]:
    """Return each statement's (table oid, column number) per result column, via libpq.

    A column read through a view is followed to the table column behind it
    (see ``_through_views``), so that ``SELECT v.* FROM app.user_rows AS v``
    is as NOT NULL as the columns of ``app.users`` it shows.
    """
    import psycopg

    out: list[list[tuple[int, int]] | None] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql in statements:
            out.append(_describe(conn, sql))
        views: dict[int, list[tuple[int, int]] | None] = {}
        return [
            None if cols is None else [_through_views(conn, o, views) for o in cols] for cols in out
        ]


def _describe(conn: Any, sql: str) -> list[tuple[int, int]] | None:
    """Return (table oid, column number) per result column of *sql*, or None if it fails."""
    import psycopg

    pg = conn.pgconn
    prepared = pg.prepare(b"", sql.encode())
    if prepared.status != psycopg.pq.ExecStatus.COMMAND_OK:
        return None  # asyncpg's prepare reports the error
    d = pg.describe_prepared(b"")
    return [(d.ftable(i), d.ftablecol(i)) for i in range(d.nfields)]


def _through_views(
    conn: Any,
    origin: tuple[int, int],
    views: dict[int, list[tuple[int, int]] | None],
    depth: int = 0,
) -> tuple[int, int]:
    """Follow a column of a view to the table column it shows; (0, 0) if it is not one.

    PostgreSQL reports a view's own oid for its columns, and a view column is
    never marked NOT NULL. The view's defining query, described the same way,
    tells which table column each view column is. A view with an outer join
    maps no column (an outer join can fill any of them with NULL).
    """
    oid, column = origin
    if not oid:
        return origin
    if oid not in views:
        row = conn.execute(
            "SELECT CASE WHEN c.relkind = 'v' THEN pg_catalog.pg_get_viewdef(c.oid) END"
            " FROM pg_catalog.pg_class AS c WHERE c.oid = %s",
            (oid,),
        ).fetchone()
        definition = row[0] if row else None
        if definition is None:
            views[oid] = None  # a table: its columns stand for themselves
        elif _OUTER_JOIN.search(definition):
            views[oid] = []
        else:
            views[oid] = _describe(conn, definition) or []
    mapped = views[oid]
    if mapped is None:
        return origin
    if depth > 8 or not 0 < column <= len(mapped):
        return (0, 0)
    return _through_views(conn, mapped[column - 1], views, depth + 1)


async def _outer_joined(conn: Any, sql: str) -> set[int]:
    """Return the oids of tables on the nullable side of an outer join (``_ALL``: unsure)."""
    oids: set[int] = set()
    for side, lateral, target in _OUTER_JOIN.findall(strip_hidden(sql)):
        if side.upper() != "LEFT" or lateral or target == "(":
            return {_ALL}
        oid, relkind = await conn.fetchrow(
            "SELECT c.oid, c.relkind::text FROM pg_catalog.pg_class AS c"
            " WHERE c.oid = to_regclass($1)",
            target,
        ) or (None, None)
        if oid is None or relkind == "v":
            return {_ALL}  # unknown, or a view: its columns stand for other tables'
        oids.add(int(oid))
    return oids


async def column_nullability(
    conn: Any,
    q: Any,
    attributes: list[Any],
    origin: list[tuple[int, int]] | None,
    problem: typing.Callable[..., None],
) -> list[tuple[bool, str | None, str | None]]:
    """Return (can be NULL, ``schema.table.column`` origin, why NULL) for each column."""
    marks = not_null_marks(q.doc)
    names = {a.name for a in attributes}
    for unknown in sorted(marks - names):
        problem("nullability", f"`not-null: {unknown}` names no result column")
    refs = [o for o in (origin or []) if o[0]]
    catalog: dict[tuple[int, int], tuple[bool, str]] = {}
    if refs:
        rows = await conn.fetch(
            "SELECT a.attrelid, a.attnum, a.attnotnull, "
            "format('%s.%s', a.attrelid::regclass, quote_ident(a.attname)) AS origin "
            "FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = ANY($1::oid[])",
            sorted({o[0] for o in refs}),
        )
        catalog = {(r[0], r[1]): (bool(r[2]), str(r[3])) for r in rows}
    outer = await _outer_joined(conn, q.sql) if refs else set()
    out: list[tuple[bool, str | None, str | None]] = []
    for i, a in enumerate(attributes):
        ref = origin[i] if origin and i < len(origin) else (0, 0)
        notnull, where = catalog.get(ref, (False, None))
        why: str | None = f"{where} is nullable" if where else _EXPRESSION
        if notnull:
            why = None
        if where and (_ALL in outer or ref[0] in outer):
            # an outer join can fill even a NOT NULL column with NULL
            notnull, why = False, f"{where} is on the nullable side of an outer join"
        if a.name in marks:
            notnull, why = True, None
        out.append((not notnull, where, why))
    return out
