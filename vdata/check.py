"""``vdata check``: every named query of ``sql/`` against a migrated schema.

What is checked, for each ``-- name:`` block (see docs/check-and-explain.md):

* the files alone: a doc comment, a parameter list, no name used twice in one
  folder (aiosql would silently keep one), declared parameters == used ones;
* on the server: the statement prepares (syntax, unknown relations or
  columns, type errors); the types it infers for parameters (an ``unknown``
  is an error, a ``text`` for a parameter named like an id, time or count is
  a warning: a cast was probably meant);
* against the row Struct tied by ``vdata.queries.query(name, Struct)``:
  column names, order and count equal the Struct's positional fields, each
  column's type is one asyncpg decodes into the field's annotation, and a
  column that can be NULL maps to an optional field.

Nullability: a column that is a plain reference to a table column is NOT
NULL when the catalog says so and its table is not on the nullable side of
an outer join; anything else (expressions, aggregates, subqueries, outer
joins) can be NULL unless the doc comment says otherwise with a line
``-- not-null: col_a, col_b``. The table behind each column comes from the
RowDescription's table oid and column number, which asyncpg keeps private
and libpq exposes (``PQftable``/``PQftablecol`` through psycopg's ``pq``).
"""

from __future__ import annotations

__all__ = ["Column", "Param", "Problem", "QueryReport", "Report", "check", "not_null_marks"]

import asyncio
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import msgspec

from vdata import _pgtypes
from vdata._checkload import LoadedQueries, load_for_check
from vdata._checkstruct import compare_struct
from vdata._nullable import column_nullability, not_null_marks, result_origins
from vdata.queries import Query

# A parameter named like one of these almost never means text.
_TYPED_NAME = re.compile(
    r"(^|_)(id|ids|at|until|since|before|after|limit|offset|count|size|version|days|seconds)$"
    r"|^(is|has)_"
)


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One finding, located at a file and line."""

    path: str
    line: int
    query: str
    # load, duplicate, doc, params, prepare, param-type, shape, struct, columns,
    # types, nullability
    kind: str
    message: str
    severity: str = "error"  # or "warning" (reported, does not fail the check)


class Param(msgspec.Struct, frozen=True):
    """A parameter and the type the server inferred for it."""

    name: str
    type: str


class Column(msgspec.Struct, frozen=True):
    """A result column: its type, whether it can be NULL, and where it comes from."""

    name: str
    type: str
    nullable: bool
    origin: str | None  # ``schema.table.column`` or None for an expression
    why_nullable: str | None = None


class QueryReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the server said about one query."""

    name: str
    path: str
    line: int
    kind: str
    struct: str | None
    params: list[Param]
    columns: list[Column]


class Report(msgspec.Struct, kw_only=True):
    """The outcome of a check: every query looked at and every problem found."""

    root: str
    queries: list[QueryReport] = msgspec.field(default_factory=list)
    problems: list[Problem] = msgspec.field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Return the problems that fail the check."""
        return [p for p in self.problems if p.severity == "error"]

    def to_json(self) -> bytes:
        """Return the report as JSON (``vdata check --json``)."""
        return msgspec.json.format(msgspec.json.encode(self), indent=2)

    def to_text(self, *, verbose: bool = False) -> str:
        """Return the report for a person: problems grouped by file, then a summary."""
        from vdata._checkreport import format_text

        return format_text(self, verbose=verbose)


def import_repositories() -> list[str]:
    """Import every ``vdata.repositories`` module (they tie queries to Structs); return failures."""
    import vdata.repositories as package

    failures = []
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # a broken repository must not hide the rest
            failures.append(f"{info.name}: {type(exc).__name__}: {exc}")
    return failures


async def check(dsn: str, *, root: Path | None = None) -> Report:
    """Check every named query under *root* (default ``sql/``) on the database *dsn*.

    With the default root the repositories are imported first, so each query
    carries the Struct its repository declared. Raise only when *dsn* cannot
    be reached; every finding goes into the returned ``Report``.
    """
    import asyncpg

    loaded = load_for_check(root)
    report = Report(root=str(loaded.root), problems=list(loaded.problems))
    if root is None:
        for failure in import_repositories():
            report.problems.append(
                Problem(path="vdata/repositories", line=0, query="", kind="load", message=failure)
            )
    origins = await asyncio.to_thread(result_origins, dsn, [q.sql for q in loaded.queries])
    conn = await asyncpg.connect(dsn)
    try:
        text_columns = await _text_columns(conn)
        for q, origin in zip(loaded.queries, origins, strict=True):
            await _check_one(conn, loaded, q, origin, text_columns, report)
    finally:
        await conn.close()
    report.problems.sort(key=lambda p: (p.path, p.line, p.query, p.kind))
    return report


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
    types = await _pgtypes.resolve_types(conn, {a.type.oid for a in attributes})
    nullable = await column_nullability(conn, q, attributes, origin, problem)
    columns = [
        Column(a.name, types[a.type.oid].name if a.type.oid in types else a.type.name, *n)
        for a, n in zip(attributes, nullable, strict=True)
    ]
    bound = q.struct
    # A `$` query is bound to the type of its value; only Structs have columns to compare.
    struct = bound if isinstance(bound, type) and issubclass(bound, msgspec.Struct) else None
    report.queries.append(
        QueryReport(
            name=q.name,
            path=path,
            line=line,
            kind=q.kind.value,
            struct=None if bound is None else bound.__name__,
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
        elif struct is None and loaded.structs_known:
            problem(
                "struct",
                "returns rows but no Struct is bound to it: declare "
                f"Q.bind({q.name!r}, YourStruct) beside its repository",
            )
    if struct is not None and columns:
        compare_struct(struct, columns, [types.get(a.type.oid) for a in attributes], problem)
