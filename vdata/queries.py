"""Named queries: ``.sql`` folders loaded once by aiosql, and their typed binding to Structs.

A folder of ``.sql`` files is loaded with :func:`load_queries`; each
``-- name:`` becomes a :class:`Query`. ``Queries.bind(name, Struct)``
returns the same statement typed as ``Query[Struct]``: a repository helper
that runs it returns ``Struct`` to the type checker, and builds one per
row positionally. The binding is declared beside the repository that uses
it, and recorded on the loaded folder so that ``vdata check`` can compare
the Struct with the columns the server reports.
"""

from __future__ import annotations

__all__ = ["Queries", "Query", "QueryKind", "load", "load_queries"]

import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import aiosql
import asyncpg

from vdata._resources import sql_dir

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


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
_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class Query(Generic[T_co]):
    """One named statement: its SQL with ``$n`` placeholders, and what its rows become.

    ``struct`` is the type of one result: a msgspec Struct built
    positionally from each row (``Struct(*row)``), a scalar type for a
    ``$`` query, or None for a query whose rows stay asyncpg Records.
    ``params`` is the order of the ``$n`` placeholders; ``declared`` the
    order of the ``-- name: f(a, b)`` signature, which positional
    arguments follow.
    """

    __slots__ = (
        "_order",
        "declared",
        "doc",
        "entity",
        "kind",
        "lag_tolerant",
        "line",
        "name",
        "params",
        "path",
        "read_only",
        "sql",
        "struct",
    )

    struct: type[T_co] | None

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
        declared: tuple[str, ...] | None = None,
    ) -> None:
        self.name = name
        self.sql = sql
        self.params = params
        self.declared = params if declared is None else declared
        self.kind = kind
        self.doc = doc
        self.path = path
        self.line = line
        self.read_only = bool(_READ_ONLY.match(sql)) and not _WRITES.search(_LOCKING.sub("", sql))
        self.struct = None
        self.entity = "row"
        # May run on a read replica outside a transaction (vdata.engine.replicas);
        # declared with Queries.bind(..., lag_tolerant=True).
        self.lag_tolerant = False
        # Positional arguments come in declared order; the wire wants $n order.
        self._order: tuple[int, ...] | None = (
            None
            if self.declared == params or set(self.declared) != set(params)
            else tuple(self.declared.index(p) for p in params)
        )

    def __repr__(self) -> str:
        to = f" -> {self.struct.__name__}" if self.struct is not None else ""
        return f"<Query {self.name}{to} ({self.path.name}:{self.line})>"

    def _typed(self, struct: type[Any], entity: str, lag_tolerant: bool = False) -> Query[Any]:
        bound: Query[Any] = object.__new__(Query)
        for slot in Query.__slots__:
            object.__setattr__(bound, slot, getattr(self, slot))
        bound.struct = struct
        bound.entity = entity
        bound.lag_tolerant = lag_tolerant
        return bound

    def arguments(self, args: Sequence[object], values: Mapping[str, object]) -> Sequence[object]:
        """Return the ``$n`` arguments for *args* (declared order) or *values* (by name).

        Raise TypeError on a mismatch: a programming error in a repository,
        reported with parameter names only, never the values.
        """
        if not values:
            if len(args) != len(self.params):
                raise TypeError(
                    f"query {self.name} takes {len(self.params)} arguments "
                    f"({', '.join(self.declared)}), got {len(args)}"
                )
            order = self._order
            return args if order is None else [args[i] for i in order]
        if args:
            raise TypeError(f"query {self.name}: pass arguments by position or by name, not both")
        if len(values) == len(self.params):
            try:
                return [values[name] for name in self.params]
            except KeyError:
                pass
        missing = sorted(set(self.params) - set(values))
        extra = sorted(set(values) - set(self.params))
        raise TypeError(f"query {self.name}: missing parameters {missing}, unexpected {extra}")


class Queries:
    """Every named query of one folder of ``.sql`` files, by ``"<subfolder>.<name>"``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # aiosql refuses undeclared and unused parameters at load time.
        loaded = aiosql.from_path(root, "asyncpg", kwargs_only=True)
        adapter = loaded.driver_adapter
        self._by_name: dict[str, Query[asyncpg.Record]] = {}
        self._bound: dict[str, Query[Any]] = {}
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
                declared=tuple(getattr(fn, "parameters", None) or ()) or None,
                kind=_KINDS[operation],
                doc=(fn.__doc__ or "").strip(),
                path=Path(code.co_filename),
                line=code.co_firstlineno,
            )

    def __repr__(self) -> str:
        return f"<Queries {self.root} ({len(self)} queries, {len(self._bound)} bound)>"

    def __getitem__(self, name: str) -> Query[asyncpg.Record]:
        """Return the query *name*, its rows as asyncpg Records; raise KeyError if absent."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} under {self.root}") from None

    def bind(
        self, name: str, struct: type[T], *, entity: str | None = None, lag_tolerant: bool = False
    ) -> Query[T]:
        """Return the query *name* typed so that each result becomes *struct*.

        *struct* is a msgspec Struct whose fields are the query's columns in
        order (``vdata check`` verifies it), or for a ``$`` query the type of
        its value. *entity* names the row in NotFoundError (default: the
        Struct's name in words, ``ApiKey`` -> ``"api key"``). Binding the same
        query to two different types is refused with ValueError.

        *lag_tolerant* declares that the query's result may be a little
        stale (a listing, a search, a statistic): outside a transaction it
        may then run on a read replica (``Settings.replica_dsns``). Only a
        query that only reads can be declared so (ValueError otherwise).
        """
        earlier = self._bound.get(name)
        if earlier is not None:
            if earlier.struct is not struct:
                raise ValueError(
                    f"{name} is already bound to {earlier.struct!r}, not {struct.__name__}"
                )
            if earlier.lag_tolerant != lag_tolerant:
                raise ValueError(
                    f"{name} is already bound with lag_tolerant={earlier.lag_tolerant}"
                )
            return earlier
        if lag_tolerant and not self[name].read_only:
            raise ValueError(f"{name} writes: only a read can be lag_tolerant")
        if entity is None:
            entity = _WORD_START.sub(" ", struct.__name__).lower()
        bound: Query[T] = self[name]._typed(struct, entity, lag_tolerant)
        self._bound[name] = bound
        return bound

    def bound(self) -> list[Query[Any]]:
        """Return the queries bound to a type so far, by name."""
        return [self._bound[name] for name in sorted(self._bound)]

    def __iter__(self) -> Iterator[Query[Any]]:
        """Yield every query, the bound version where one was declared."""
        for name, q in self._by_name.items():
            yield self._bound.get(name, q)

    def __len__(self) -> int:
        return len(self._by_name)


def _lookup(loaded: Any, qualified: str) -> Any:
    target = loaded
    for part in qualified.split("."):
        target = getattr(target, part)
    return target


@cache
def _load(root: Path) -> Queries:
    return Queries(root)


def load_queries(root: str | Path) -> Queries:
    """Return the named queries of the folder *root*, loaded once per process.

    Each subfolder is a namespace: ``root/invoices/*.sql`` holds
    ``invoices.<name>``. aiosql checks every query's declared parameters
    at load time; a malformed file raises here, at import, not at a call.
    """
    return _load(Path(root).resolve())


def load(root: Path | None = None) -> Queries:
    """Return the queries under *root*, by default vdata's own ``sql/``."""
    return load_queries(root or sql_dir())
