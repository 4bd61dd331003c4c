"""Repository: run named queries on an executor and build Structs from rows."""

from __future__ import annotations

__all__ = ["Executor", "Page", "Repository", "Slice"]

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec

from vdata.cursors import CursorCodec
from vdata.errors import NotFoundError, StaleVersionError, ValidationError
from vdata.validation import check_actor

if TYPE_CHECKING:
    import asyncpg

    from vdata.queries import Query
    from vdata.transaction import TransactionContext

T = TypeVar("T")


class Executor(Protocol):
    """Where a repository's statements run: the pool, or one transaction."""

    actor: str | None

    @property
    def settings(self) -> Any: ...

    async def fetchrow(self, q: Query, args: Sequence[object]) -> asyncpg.Record | None: ...
    async def fetch(self, q: Query, args: Sequence[object]) -> list[asyncpg.Record]: ...
    async def fetchval(self, q: Query, args: Sequence[object]) -> object: ...
    async def execute(self, q: Query, args: Sequence[object]) -> str: ...
    def transaction(self) -> TransactionContext: ...


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of an offset listing, with the total across all pages."""

    items: list[T]
    total: int
    offset: int
    limit: int


class Slice(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of a keyset listing; pass ``next_cursor`` to get the next one."""

    items: list[T]
    next_cursor: str | None


class Repository:
    """Base of every repository: typed helpers over named queries.

    Rows become Structs positionally (``Struct(*record)``): the column order
    of each query is checked against the Struct's fields by ``vdata check``
    and its test, so no dict is built on the hot path.
    """

    __slots__ = ("_db",)

    def __init__(self, executor: Executor) -> None:
        self._db = executor

    def __repr__(self) -> str:
        return f"<{type(self).__name__} on {self._db!r}>"

    # -- running queries -------------------------------------------------

    async def _one(self, q: Query, /, **params: object) -> Any:
        """Return *q*'s row as its Struct, or None."""
        row = await self._db.fetchrow(q, q.bind(params))
        if row is None:
            return None
        struct = q.struct
        # row[:] is a tuple copied in C: unpacking it is about twice as fast
        # as unpacking the Record itself.
        return row if struct is None else struct(*row[:])

    async def _many(self, q: Query, /, **params: object) -> list[Any]:
        """Return *q*'s rows as its Structs."""
        rows = await self._db.fetch(q, q.bind(params))
        struct = q.struct
        return rows if struct is None else [struct(*row[:]) for row in rows]

    async def _value(self, q: Query, /, **params: object) -> Any:
        """Return the first column of *q*'s first row."""
        return await self._db.fetchval(q, q.bind(params))

    async def _exec(self, q: Query, /, **params: object) -> int:
        """Run *q*; return how many rows it touched (from the status string)."""
        status = await self._db.execute(q, q.bind(params))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def _require(self, q: Query, what: str, key: object, /, **params: object) -> Any:
        """Return *q*'s row as its Struct; raise NotFoundError naming *what* if absent."""
        # The hot path of every get: one coroutine frame less than via _one.
        row = await self._db.fetchrow(q, q.bind(params))
        if row is None:
            raise NotFoundError(what, key)
        struct = q.struct
        return row if struct is None else struct(*row[:])

    async def _versioned(
        self,
        q: Query,
        probe: Query,
        what: str,
        key: object,
        expected_version: int,
        /,
        **params: object,
    ) -> Any:
        """Run the optimistic-lock update *q*; tell a missing row from a stale version.

        *q* must update ``WHERE id = :id AND version = :expected_version``
        and return the row; *probe* returns the current version (or nothing)
        of the live row with ``id = :id``.
        """
        row = await self._one(q, expected_version=expected_version, **params)
        if row is not None:
            return row
        current = await self._value(probe, id=params["id"])
        if current is None:
            raise NotFoundError(what, key)
        raise StaleVersionError(what, key, expected_version=expected_version)

    # -- principals and pages -------------------------------------------

    def _actor(self, actor: str | None) -> str:
        """Return the acting principal: *actor*, else the transaction's."""
        chosen = actor if actor is not None else self._db.actor
        if chosen is None:
            raise ValidationError(
                "a write needs an actor: pass actor=... or open db.transaction(actor=...)",
                field="actor",
            )
        return check_actor(chosen)

    @staticmethod
    def _page_args(offset: int, limit: int, *, max_limit: int = 1000) -> tuple[int, int]:
        if not offset >= 0:
            raise ValidationError("offset must be >= 0", field="offset")
        if not 1 <= limit <= max_limit:
            raise ValidationError(f"limit must be between 1 and {max_limit}", field="limit")
        return offset, limit

    async def _offset_page(
        self, q: Query, count: Query, offset: int, limit: int, /, **filters: object
    ) -> Page[Any]:
        """Return one offset page of *q* and the total from *count* (same filters)."""
        offset, limit = self._page_args(offset, limit)
        items = await self._many(q, offset=offset, page_size=limit, **filters)
        if items and len(items) < limit and offset == 0:
            total = len(items)  # the whole result fits on the first page
        else:
            total = int(str(await self._value(count, **filters)))
        return Page(items=items, total=total, offset=offset, limit=limit)

    async def _keyset_page(
        self,
        q: Query,
        cursor: str | None,
        limit: int,
        key: Callable[[Any], tuple[Any, ...]],
        after: Callable[[tuple[Any, ...] | None], dict[str, object]],
        /,
        **filters: object,
    ) -> Slice[Any]:
        """Return one keyset page of *q* after the signed *cursor*.

        *after* turns the decoded cursor (None for the first page) into the
        query's ``after_*`` parameters; *key* gives a row's sort key.
        """
        _, limit = self._page_args(0, limit)
        codec = cursor_codec(self._db.settings)
        # The query's name is signed into the cursor: one listing's cursor
        # is refused by another's.
        filters.update(after(None if cursor is None else codec.decode(cursor, scope=q.name)))
        filters["page_size"] = limit + 1
        # The executor directly, not _many: the row past the page never
        # becomes a Struct, and ``row[:]`` (a tuple, copied in C) is about
        # twice as fast to unpack into a Struct as the Record itself.
        rows = await self._db.fetch(q, q.bind(filters))
        more = len(rows) > limit
        if more:
            del rows[limit:]
        struct = q.struct
        items = rows if struct is None else [struct(*row[:]) for row in rows]
        next_cursor = codec.encode(key(items[-1]), scope=q.name) if more else None
        return Slice(items=items, next_cursor=next_cursor)


_CODECS: dict[str, CursorCodec] = {}


def cursor_codec(settings: Any) -> CursorCodec:
    """Return the cursor codec for *settings*' secret key (one per key)."""
    secret = settings.secret_key
    codec = _CODECS.get(secret)
    if codec is None:
        codec = _CODECS[secret] = CursorCodec.from_settings(settings)
    return codec
