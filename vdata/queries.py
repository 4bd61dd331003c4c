"""The named queries of ``sql/``, loaded once by aiosql, and their row Structs."""

from __future__ import annotations

__all__ = ["Query", "QueryKind", "all_queries", "load", "query"]

import enum
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import aiosql

from vdata._resources import sql_dir


class QueryKind(enum.Enum):
    """What a query returns, from its aiosql suffix."""

    MANY = "many"  # no suffix: rows
    ONE = "one"  # ^: one row or none
    VALUE = "value"  # $: a scalar
    EXECUTE = "execute"  # ! or <!: a status string / returned row


_KINDS = {
    "SELECT": QueryKind.MANY,
    "SELECT_ONE": QueryKind.ONE,
    "SELECT_VALUE": QueryKind.VALUE,
    "INSERT_RETURNING": QueryKind.ONE,
    "INSERT_UPDATE_DELETE": QueryKind.EXECUTE,
    "INSERT_UPDATE_DELETE_MANY": QueryKind.EXECUTE,
}

# A statement that only reads may be retried on a transient failure; the
# first keyword after comments decides. SELECT ... FOR UPDATE still only
# reads, and locks are released with the failed transaction.
_READ_ONLY = re.compile(r"^\s*(?:--[^\n]*\n\s*)*(SELECT|VALUES|TABLE)\b", re.IGNORECASE)
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)
_LOCKING = re.compile(r"\bFOR\s+(NO\s+KEY\s+)?UPDATE\b", re.IGNORECASE)


class Query:
    """One named query: its SQL with ``$n`` placeholders and its parameter order.

    ``struct`` is the msgspec Struct its rows become (set once, by
    :func:`query`), which ``vdata check`` compares with the result columns.
    """

    __slots__ = (
        "doc",
        "kind",
        "line",
        "name",
        "params",
        "path",
        "read_only",
        "sql",
        "struct",
    )

    def __init__(
        self,
        *,
        name: str,
        sql: str,
        params: tuple[str, ...],
        kind: QueryKind,
        doc: str,
        path: Path,
        line: int,
    ) -> None:
        self.name = name
        self.sql = sql
        self.params = params
        self.kind = kind
        self.doc = doc
        self.path = path
        self.line = line
        self.read_only = bool(_READ_ONLY.match(sql)) and not _WRITES.search(_LOCKING.sub("", sql))
        self.struct: type[Any] | None = None

    def __repr__(self) -> str:
        return f"<Query {self.name} ({self.path.name}:{self.line})>"

    def bind(self, values: Mapping[str, object]) -> tuple[object, ...]:
        """Return the positional arguments for *values*; raise TypeError on a mismatch."""
        if len(values) != len(self.params):
            self._mismatch(values)
        try:
            return tuple([values[name] for name in self.params])
        except KeyError:
            self._mismatch(values)
            raise  # unreachable; keeps type checkers content

    def _mismatch(self, values: Mapping[str, object]) -> None:
        # A programming error in a repository, so a TypeError, not a vdata
        # error: names only, never the values.
        missing = sorted(set(self.params) - set(values))
        extra = sorted(set(values) - set(self.params))
        raise TypeError(f"query {self.name}: missing parameters {missing}, unexpected {extra}")


class Queries:
    """Every named query of ``sql/``, by ``"<folder>.<name>"``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # aiosql refuses undeclared and unused parameters at load time.
        loaded = aiosql.from_path(root, "asyncpg", kwargs_only=True)
        adapter = loaded.driver_adapter
        self._by_name: dict[str, Query] = {}
        for qualified in sorted(loaded.available_queries):
            if qualified.endswith("_cursor"):
                continue  # aiosql adds a cursor variant of each select; unused
            fn = _lookup(loaded, qualified)
            operation = str(fn.operation.name)
            if operation not in _KINDS:
                raise ValueError(f"{qualified}: unsupported query kind {operation}")
            code = fn.__func__.__code__ if hasattr(fn, "__func__") else fn.__code__
            self._by_name[qualified] = Query(
                name=qualified,
                sql=fn.sql,
                params=tuple(adapter.var_sorted.get(qualified, ())),
                kind=_KINDS[operation],
                doc=(fn.__doc__ or "").strip(),
                path=Path(code.co_filename),
                line=code.co_firstlineno,
            )

    def __getitem__(self, name: str) -> Query:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} under {self.root}") from None

    def __iter__(self) -> Iterator[Query]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


def _lookup(loaded: Any, qualified: str) -> Any:
    target = loaded
    for part in qualified.split("."):
        target = getattr(target, part)
    return target


@cache
def load(root: Path | None = None) -> Queries:
    """Return the queries under *root* (default: vdata's ``sql/``), loaded once."""
    return Queries(root or sql_dir())


def all_queries() -> Queries:
    """Return vdata's own queries."""
    return load()


def query(name: str, struct: type[Any] | None = None) -> Query:
    """Return the query *name* and tie it to the Struct its rows become.

    This is the one declared place where a query meets its Struct: the
    repositories read ``q.struct`` and ``vdata check`` verifies it against
    the columns the server reports.
    """
    q = load()[name]
    if struct is not None:
        if q.struct is not None and q.struct is not struct:
            raise ValueError(f"{name} already maps to {q.struct.__name__}, not {struct.__name__}")
        q.struct = struct
    return q
