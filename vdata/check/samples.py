"""Representative parameter values for ``vdata explain --analyze``.

A plan measured with values that match nothing is a plan for the empty case.
So each parameter gets, as text to be cast to its type, a value sampled from
the column it most likely filters on; only when no column fits does it fall
back to a plain value of its type.

Which column: the query folder's table when it has a column of that name
(``:username`` in ``sql/users/``); ``:id`` is that table's id; ``:<thing>_id``
is the id of ``app.<thing>s`` (``:owner_id``, ``:assignee_id``, ``:user_id`` and
``:as_user`` are users); otherwise any growing table with a column of that name.
"""

from __future__ import annotations

__all__ = ["sample_values"]

import datetime
from typing import Any

from vdata.queries import Query

_FOLDER_TABLE = {"audit": "audit_log"}
_ID_TABLES = {"owner": "users", "assignee": "users", "user": "users", "actor": "users"}
_TABLES = ("users", "api_keys", "sessions", "audit_log", "projects", "tasks", "roles")


def _columns(conn: Any) -> dict[str, set[str]]:
    rows = conn.execute(
        "SELECT c.relname, a.attname FROM pg_catalog.pg_attribute AS a "
        "JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p') AND a.attnum > 0 "
        "AND NOT a.attisdropped"
    ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(str(table), set()).add(str(column))
    return out


def _source(q: Query[Any], name: str, columns: dict[str, set[str]]) -> tuple[str, str] | None:
    """Return the (table, column) a parameter most likely filters on, or None."""
    folder = q.name.split(".")[0]
    home = _FOLDER_TABLE.get(folder, folder)
    if name in columns.get(home, set()):
        return home, name
    if name.endswith("_id") or name.endswith("user"):  # :owner_id, :as_user
        stem = name.removesuffix("_id")
        table = "users" if stem.endswith("user") else _ID_TABLES.get(stem, stem + "s")
        if "id" in columns.get(table, set()):
            return table, "id"
    for table in _TABLES:
        if name in columns.get(table, set()):
            return table, name
    return None


def _fallback(name: str, pgtype: str) -> str | None:
    """Return a plain text value of *pgtype* for parameter *name* (None: NULL)."""
    now = datetime.datetime.now(datetime.UTC)
    if pgtype.endswith("[]"):
        return "{}"
    if pgtype in ("integer", "bigint", "smallint", "numeric"):
        if "offset" in name:
            return "0"
        if any(word in name for word in ("limit", "size", "count", "max", "keep")):
            return "50"
        return "1"
    if pgtype == "boolean":
        return "true"
    if pgtype.startswith("timestamp"):
        # the start of a window reaches back a month, so that the window holds rows
        start = any(word in name for word in ("after", "since", "from", "start"))
        return (now - datetime.timedelta(days=30) if start else now).isoformat()
    if pgtype == "date":
        return now.date().isoformat()
    if pgtype == "interval":
        return "30 days"
    if pgtype in ("json", "jsonb"):
        return "{}"
    if pgtype == "inet":
        return "127.0.0.1"
    if pgtype == "bytea":
        return "\\x" + "00" * 32
    if pgtype == "uuid":
        return "00000000-0000-0000-0000-000000000000"
    if pgtype == "text":
        return "todo" if name == "status" else "seed"
    return None


def sample_values(conn: Any, q: Query[Any], types: list[str]) -> dict[str, str | None]:
    """Return a text value (or None) per parameter of *q*, in parameter order."""
    from psycopg import sql

    columns = _columns(conn)
    values: dict[str, str | None] = {}
    for name, pgtype in zip(q.params, types, strict=False):
        value = None
        source = _source(q, name, columns)
        if source is not None:
            table, column = source
            # TABLESAMPLE picks a random page cheaply on big tables; a small
            # table may yield nothing from it, so fall back to the first row.
            for sample in ("TABLESAMPLE SYSTEM (1)", ""):
                query = sql.SQL(
                    "SELECT {col}::text FROM {tab} " + sample + " WHERE {col} IS NOT NULL LIMIT 1"
                ).format(col=sql.Identifier(column), tab=sql.Identifier("app", table))
                row = conn.execute(query).fetchone()
                if row is not None:
                    value = str(row[0])
                    break
        values[name] = value if value is not None else _fallback(name, pgtype)
    return values
