"""``vdata check``: every named query of a folder of SQL against a migrated schema.

What is checked, for each ``-- name:`` block (see docs/check-and-explain.md):

* the files alone: a doc comment, a parameter list, no name used twice in one
  folder (aiosql would silently keep one), declared parameters == used ones;
* on the server: the statement prepares (syntax, unknown relations or
  columns, type errors); the types it infers for parameters (an ``unknown``
  is an error, a ``text`` for a parameter named like an id, time or count is
  a warning: a cast was probably meant);
* against the row Struct bound with ``Queries.bind(name, Struct)``: column
  names, order and count equal the Struct's positional fields, each
  column's type is one asyncpg decodes into the field's annotation, and a
  column that can be NULL maps to an optional field (``structs``,
  ``nullable``, ``pgtypes``).

Which folders and which bindings: ``sources``. vdata's own queries must all
be bound when they return rows; a service's may stay asyncpg Records (a
warning when the service declared bindings, nothing for SQL alone).
"""

from __future__ import annotations

__all__ = ["check"]

import asyncio
import re
from typing import Any

import msgspec

from vdata.check import pgtypes
from vdata.check.files import LoadedQueries, load_for_check
from vdata.check.nullable import column_nullability, result_origins
from vdata.check.report import Column, Param, Problem, QueryReport, Report
from vdata.check.sources import Sources, import_modules
from vdata.check.structs import compare_struct
from vdata.dsn import parse_dsn
from vdata.queries import Query

# A parameter named like one of these almost never means text.
_TYPED_NAME = re.compile(
    r"(^|_)(id|ids|at|until|since|before|after|limit|offset|count|size|version|days|seconds)$"
    r"|^(is|has)_"
)


async def check(dsn: str, sources: Sources | None = None) -> Report:
    """Check every named query of *sources* (default: vdata's ``sql/``) on the database *dsn*.

    The modules that bind Structs are imported first (for vdata's own
    ``sql/``, its repositories), so each query carries the Struct bound to
    it. Raise only when *dsn* cannot be reached; every finding goes into
    the returned ``Report``.
    """
    import asyncpg

    sources = sources or Sources()
    failures = import_modules(sources)
    folders = [load_for_check(root) for root in sources.roots]
    report = Report(
        root=", ".join(str(f.root) for f in folders),
        problems=[p for f in folders for p in f.problems],
    )
    for failure in failures:
        where = "vdata/repositories" if sources.own else failure.split(":", 1)[0]
        report.problems.append(Problem(path=where, line=0, query="", kind="load", message=failure))
    statements = [q.sql for f in folders for q in f.queries]
    parsed = parse_dsn(dsn)  # any form libpq reads; ConfigurationError if malformed
    origins = iter(await asyncio.to_thread(result_origins, parsed.conninfo(), statements))
    conn = await asyncpg.connect(parsed.asyncpg_dsn())
    try:
        text_columns = await _text_columns(conn)
        for folder in folders:
            unbound = _unbound_severity(sources, folder)
            for q in folder.queries:
                await _check_one(conn, folder, q, next(origins), text_columns, unbound, report)
    finally:
        await conn.close()
    report.problems.sort(key=lambda p: (p.path, p.line, p.query, p.kind))
    return report


def _unbound_severity(sources: Sources, folder: LoadedQueries) -> str | None:
    """How a query returning rows with no Struct bound is reported in *folder*.

    vdata's own: an error (every bundled query maps to a Struct). A
    service's: a warning once it declares bindings (its rows stay asyncpg
    Records, which may be meant); nothing for a folder checked as SQL alone.
    """
    if not folder.structs_known:
        return None
    if sources.own:
        return "error"
    if sources.modules or any(q.struct is not None for q in folder.queries):
        return "warning"
    return None


async def _text_columns(conn: Any) -> set[str]:
    """Return the names of the schema's text-typed table columns.

    A parameter compared with such a column is rightly inferred as text.
    """
    rows = await conn.fetch(
        "SELECT DISTINCT a.attname FROM pg_catalog.pg_attribute AS a "
        "JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND a.attnum > 0 AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)"
    )
    return {str(r[0]) for r in rows}


async def _check_one(
    conn: Any,
    loaded: LoadedQueries,
    q: Query[Any],
    origin: list[tuple[int, int]] | None,
    text_columns: set[str],
    unbound: str | None,
    report: Report,
) -> None:
    """Prepare *q* and compare what the server reports with its declaration and Struct."""
    import asyncpg

    path, line = loaded.where(q)

    def problem(kind: str, message: str, severity: str = "error") -> None:
        report.problems.append(
            Problem(
                path=path, line=line, query=q.name, kind=kind, message=message, severity=severity
            )
        )

    try:
        stmt = await conn.prepare(q.sql)
    except asyncpg.PostgresError as exc:
        detail = f" ({exc.hint})" if getattr(exc, "hint", None) else ""
        problem("prepare", f"does not prepare: {exc.sqlstate} {exc}{detail}")
        return
    params = [Param(name, t.name) for name, t in zip(q.params, stmt.get_parameters(), strict=True)]
    for p in params:
        if p.type == "unknown":
            problem("param-type", f"the server cannot infer a type for :{p.name}; add a cast")
        elif p.type == "text" and _TYPED_NAME.search(p.name) and p.name not in text_columns:
            problem(
                "param-type",
                f":{p.name} is inferred as text; cast it (:{p.name}::bigint, ::timestamptz…) "
                "if that is not meant",
                "warning",
            )
    attributes = list(stmt.get_attributes())
    types = await pgtypes.resolve_types(conn, {a.type.oid for a in attributes})
    nullable = await column_nullability(conn, q, attributes, origin, problem)
    columns = [
        Column(a.name, types[a.type.oid].name if a.type.oid in types else a.type.name, *n)
        for a, n in zip(attributes, nullable, strict=True)
    ]
    struct = q.struct
    report.queries.append(
        QueryReport(
            name=q.name,
            path=path,
            line=line,
            kind=q.kind.value,
            struct=None if struct is None else struct.__name__,
            params=params,
            columns=columns,
        )
    )
    kind = q.kind.value
    if kind == "value" and len(columns) != 1:
        problem("shape", f"a `$` query must return one column, this returns {len(columns)}")
    if kind in ("one", "many"):
        if not columns:
            problem("shape", "returns no columns: mark it `!` (or add RETURNING)")
        elif struct is None and unbound is not None:
            problem(
                "struct",
                "returns rows but no Struct is bound to it: declare "
                f"Q.bind({q.name!r}, YourStruct) beside the repository that runs it",
                unbound,
            )
    if struct is None or not columns:
        return
    pg_types = [types.get(a.type.oid) for a in attributes]
    if kind == "value" and not issubclass(struct, msgspec.Struct):
        # a `$` query bound to the type of its one value
        pg = pg_types[0]
        why = None if pg is None else pgtypes.incompatibility(pg, struct)
        if why is not None:
            shown = pgtypes.annotation_text(struct)
            problem("types", f"the value is {pg.name if pg else '?'} but bound to {shown}: {why}")
        return
    compare_struct(struct, columns, pg_types, problem)
