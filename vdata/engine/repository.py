"""Repository: the public base of every repository, vdata's own and a service's.

A repository runs named queries (:class:`vdata.Query`) on an executor: the
pool (``db.<area>``) or one open transaction (``tx.<area>``). Its helpers
return what the query is bound to, so ``await self.one(GET_INVOICE, id=7)``
is an ``Invoice`` to the type checker. Rows become Structs positionally
(``Struct(*row[:])``): ``vdata check`` verifies each bound query's column
order against its Struct, so no dict is built on the hot path.
"""

from __future__ import annotations

__all__ = ["Executor", "Page", "Repository", "Slice", "TransactionExecutor"]

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import msgspec

from vdata.errors import NotFoundError, StaleVersionError, ValidationError
from vdata.security.cursors import CursorCodec, CursorKeys
from vdata.security.validation import check_actor

if TYPE_CHECKING:
    import asyncpg

    from vdata.queries import Query
    from vdata.settings import Settings

T = TypeVar("T")
K = TypeVar("K")


class Executor(Protocol):
    """Where a repository's statements run: the pool, or one transaction.

    This is all a repository sees of the engine. On the pool each call
    goes through the breaker, retries (reads, and writes proven unsent),
    deadlines and error translation; in a transaction, through deadlines
    and translation (a transaction is retried only whole).
    """

    @property
    def actor(self) -> str | None:
        """The principal a write is attributed to when it names none."""
        ...

    @property
    def settings(self) -> Settings: ...

    @property
    def cursor_keys(self) -> CursorKeys:
        """The database's keyset-cursor codec: ``secret_key``, or its own key, read once."""
        ...

    @property
    def in_transaction(self) -> bool:
        """True inside ``db.transaction()``: every statement shares one connection."""
        ...

    async def fetchrow(self, q: Query[Any], args: Sequence[object]) -> asyncpg.Record | None: ...
    async def fetch(self, q: Query[Any], args: Sequence[object]) -> list[asyncpg.Record]: ...
    async def fetchval(self, q: Query[Any], args: Sequence[object]) -> object: ...
    async def execute(self, q: Query[Any], args: Sequence[object]) -> str: ...
    def transaction(self) -> AbstractAsyncContextManager[TransactionExecutor]: ...
    def add_close_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Have the database's ``close()`` await *hook* first, while the pool still works."""
        ...


class TransactionExecutor(Executor, Protocol):
    """An executor on one connection inside a transaction: adds COPY and cursors."""

    async def copy_records(
        self, table: str, *, schema: str, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
    ) -> int: ...

    def cursor(
        self, q: Query[Any], args: Sequence[object], *, prefetch: int = 1000
    ) -> AsyncGenerator[asyncpg.Record, None]: ...


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

    Subclass it, give it methods that each run named queries through the
    helpers below, and register it (``vdata.connect(areas={"name": Cls})``)
    to get it as ``db.name`` and ``tx.name``. Arguments go by name
    (``id=7``) or by position in the order of the query's ``-- name:``
    signature.
    """

    __slots__ = ("executor",)

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def __repr__(self) -> str:
        return f"<{type(self).__name__} on {self.executor!r}>"

    # -- running queries -------------------------------------------------

    async def one(self, q: Query[T], /, *args: object, **params: object) -> T:
        """Return *q*'s row as its Struct; raise NotFoundError if there is none.

        The error names the query's entity and its first argument.
        """
        row = await self.executor.fetchrow(q, q.arguments(args, params))
        if row is None:
            raise NotFoundError(q.entity, _key(args, params))
        struct = q.struct
        # row[:] is a tuple copied in C: unpacking it is about twice as fast
        # as unpacking the Record itself.
        return cast("T", row if struct is None else struct(*row[:]))

    async def one_or_none(self, q: Query[T], /, *args: object, **params: object) -> T | None:
        """Return *q*'s row as its Struct, or None."""
        row = await self.executor.fetchrow(q, q.arguments(args, params))
        if row is None:
            return None
        struct = q.struct
        return cast("T", row if struct is None else struct(*row[:]))

    async def many(self, q: Query[T], /, *args: object, **params: object) -> list[T]:
        """Return *q*'s rows as its Structs."""
        rows = await self.executor.fetch(q, q.arguments(args, params))
        struct = q.struct
        return cast("list[T]", rows if struct is None else [struct(*row[:]) for row in rows])

    async def value(self, q: Query[T], /, *args: object, **params: object) -> T | None:
        """Return the first column of *q*'s first row; None for no row or NULL.

        Bind a ``$`` query to the type of its value: ``Q.bind("x.count_x", int)``.
        """
        return cast("T | None", await self.executor.fetchval(q, q.arguments(args, params)))

    async def execute(self, q: Query[Any], /, *args: object, **params: object) -> int:
        """Run *q*; return how many rows it touched (from the status string)."""
        status = await self.executor.execute(q, q.arguments(args, params))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def update_versioned(
        self,
        q: Query[T],
        version_of: Query[Any],
        expected_version: int | None,
        /,
        **params: object,
    ) -> T:
        """Run the optimistic-lock update *q*; tell a missing row from a stale version.

        *q* updates ``WHERE id = :id AND version = :expected_version`` and
        returns the row; *version_of* returns the current version of the
        row ``id = :id`` that *q* would change, or nothing. Raise
        NotFoundError when the row is gone, StaleVersionError when its
        version moved on. An *expected_version* of None is passed on as is:
        for a query that then skips the version check (``:expected_version
        IS NULL OR version = :expected_version``), no row means NotFoundError.
        """
        row = await self.one_or_none(q, expected_version=expected_version, **params)
        if row is not None:
            return row
        key = params["id"]
        if expected_version is None or await self.one_or_none(version_of, id=key) is None:
            raise NotFoundError(q.entity, key)
        raise StaleVersionError(q.entity, key, expected_version=expected_version)

    async def change_all(
        self,
        q: Query[T],
        ids: Sequence[K],
        blame: Callable[[K], Awaitable[object]],
        /,
        **params: object,
    ) -> list[T]:
        """Run the all-or-nothing bulk write *q* over *ids*; explain a refusal.

        *q* takes ``:ids`` and changes every one of those rows or none (it
        checks that every id qualifies before it writes), returning the
        changed rows. No row back for a non-empty *ids* means one did not
        qualify: *blame* is awaited for each id in order and raises the
        error for the first that does not (NotFoundError,
        PermissionDeniedError, ...). If none raises, the rows changed
        between the statement and the checks: StaleVersionError, and the
        caller may try again. Empty *ids* runs nothing.
        """
        if not ids:
            return []
        rows = await self.many(q, ids=ids, **params)
        if rows:
            return rows
        for key in ids:  # find the one to blame; only on failure
            await blame(key)
        raise StaleVersionError(q.entity, None)

    # -- principals and pages -------------------------------------------

    def actor(self, actor: str | None) -> str:
        """Return the acting principal: *actor*, else the transaction's.

        Raise ValidationError when neither is set, or when it is not a
        valid principal name.
        """
        chosen = actor if actor is not None else self.executor.actor
        if chosen is None:
            raise ValidationError(
                "a write needs an actor: pass actor=... or open db.transaction(actor=...)",
                field="actor",
            )
        return check_actor(chosen)

    @staticmethod
    def page_bounds(offset: int, limit: int, *, max_limit: int = 1000) -> tuple[int, int]:
        """Return (*offset*, *limit*) checked; raise ValidationError when out of range."""
        for name, value in (("offset", offset), ("limit", limit)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(f"{name} must be an integer", field=name)
        if not offset >= 0:
            raise ValidationError("offset must be >= 0", field="offset")
        if not 1 <= limit <= max_limit:
            raise ValidationError(f"limit must be between 1 and {max_limit}", field="limit")
        return offset, limit

    async def offset_page(
        self, q: Query[T], count: Query[Any], offset: int, limit: int, /, **filters: object
    ) -> Page[T]:
        """Return one offset page of *q* and the total from *count* (same filters).

        *q* takes ``offset`` and ``page_size`` besides the filters.
        """
        offset, limit = self.page_bounds(offset, limit)
        items = await self.many(q, offset=offset, page_size=limit, **filters)
        if items and len(items) < limit and offset == 0:
            total = len(items)  # the whole result fits on the first page
        else:
            total = int(str(await self.executor.fetchval(count, count.arguments((), filters))))
        return Page(items=items, total=total, offset=offset, limit=limit)

    async def keyset_page(
        self,
        q: Query[T],
        cursor: str | None,
        limit: int,
        key: Callable[[T], tuple[Any, ...]],
        after: Callable[[tuple[Any, ...] | None], dict[str, object]],
        /,
        **filters: object,
    ) -> Slice[T]:
        """Return one keyset page of *q* after the signed *cursor*.

        *after* turns the decoded cursor (None for the first page) into the
        query's ``after_*`` parameters; *key* gives a row's sort key, which
        the next cursor carries. *q* takes ``page_size`` besides the
        filters. The cursor is signed with the query's name: one listing's
        cursor is refused by another's (ValidationError).
        """
        _, limit = self.page_bounds(0, limit)
        codec = self.executor.cursor_keys.codec or await self._cursor_codec()
        filters.update(after(None if cursor is None else codec.decode(cursor, scope=q.name)))
        filters["page_size"] = limit + 1
        # The row past the page only says there is more: it never becomes a Struct.
        rows = await self.executor.fetch(q, q.arguments((), filters))
        more = len(rows) > limit
        if more:
            del rows[limit:]
        struct = q.struct
        items = cast("list[T]", rows if struct is None else [struct(*row[:]) for row in rows])
        next_cursor = codec.encode(key(items[-1]), scope=q.name) if more else None
        return Slice(items=items, next_cursor=next_cursor)

    async def _cursor_codec(self) -> CursorCodec:
        """Return the cursor codec, reading the database's signing key the first time.

        With no ``secret_key``, cursors are signed with the key migration 0306
        drew inside the database (vdata.security.cursors.CursorKeys says why).
        """
        executor = self.executor
        q = _signing_key_query()
        return await executor.cursor_keys.load(
            lambda: executor.fetchval(q, q.arguments((), {"purpose": "cursor"}))
        )


def _key(args: tuple[object, ...], params: dict[str, object]) -> object:
    if args:
        return args[0]
    return next(iter(params.values()), None)


@cache
def _signing_key_query() -> Query[bytes]:
    # Loaded on first use: vdata's own sql/ (signing_keys), not a repository's.
    from vdata.queries import load

    return load().bind("signing_keys.get_signing_key", bytes)
