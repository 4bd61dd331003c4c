"""Transaction: the one connection of an open transaction, as an executor holding the areas."""

from __future__ import annotations

__all__ = ["Host", "IsolationLevel", "Transaction", "TransactionContext"]

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from functools import cache
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, Self, TypeVar

import asyncpg

from vdata.engine.failures import translate
from vdata.errors import VdataError

if TYPE_CHECKING:
    import uuid

    from asyncpg.transaction import Transaction as PgTransaction

    from vdata.engine.areas import Areas, R
    from vdata.engine.breaker import CircuitBreaker
    from vdata.engine.deadlines import Deadlines
    from vdata.engine.health import Counters
    from vdata.engine.observe import Observers
    from vdata.queries import Query
    from vdata.security.cursors import CursorKeys
    from vdata.settings import Settings

# asyncpg's Connection methods, looked up once (as vdata.engine.database does).
_FETCHROW = asyncpg.Connection.fetchrow
_FETCH = asyncpg.Connection.fetch
_FETCHVAL = asyncpg.Connection.fetchval
_EXECUTE = asyncpg.Connection.execute

IsolationLevel = Literal["read_committed", "repeatable_read", "serializable"]
_ISOLATION = {
    None: None,
    "read_committed": "read_committed",
    "repeatable_read": "repeatable_read",
    "serializable": "serializable",
}


class Host(Protocol):
    """What a transaction needs of the database it belongs to (``vdata.engine.Database``)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def areas(self) -> Areas: ...
    @property
    def deadlines(self) -> Deadlines: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def breaker(self) -> CircuitBreaker: ...
    @property
    def cursor_keys(self) -> CursorKeys: ...
    @property
    def observers(self) -> Observers: ...

    async def lease(self) -> asyncpg.Connection: ...
    def give_back(self, conn: asyncpg.Connection, *, failed: bool = False) -> None: ...
    def add_close_hook(self, hook: Callable[[], Awaitable[None]]) -> None: ...


class Transaction:
    """One connection inside BEGIN ... COMMIT; the database's areas as attributes.

    ``tx.<area>`` is the repository registered under that name, bound to
    this transaction's connection. Statements here are never retried one
    by one: a transaction is retried only as a whole
    (``Database.run_in_transaction``).
    """

    in_transaction = True

    def __init__(
        self, db: Host, conn: asyncpg.Connection, *, actor: str | None, readonly: bool
    ) -> None:
        self._db = db
        self._conn = conn
        self._deadlines = db.deadlines
        self.areas = db.areas
        self.actor = actor
        self.readonly = readonly

    def __repr__(self) -> str:
        return f"<vdata.Transaction actor={self.actor!r} readonly={self.readonly}>"

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: an area's first access.
        if name.startswith("_") or name == "areas":
            raise AttributeError(name)
        return self.areas.instance(self, name)

    def area(self, cls: type[R]) -> R:
        """Return the registered repository of class *cls* on this transaction (typed)."""
        return self.areas.of_class(self, cls)

    @property
    def settings(self) -> Settings:
        """The settings of the database this transaction belongs to."""
        return self._db.settings

    @property
    def cursor_keys(self) -> CursorKeys:
        """The keyset-cursor keys of the database this transaction belongs to."""
        return self._db.cursor_keys

    def add_close_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Have the database's ``close()`` await *hook* first."""
        self._db.add_close_hook(hook)

    async def fetchrow(self, q: Query[Any], args: Sequence[object]) -> asyncpg.Record | None:
        """Run *q* and return its first row or None."""
        return await self._run(q, _FETCHROW, args)

    async def fetch(self, q: Query[Any], args: Sequence[object]) -> list[asyncpg.Record]:
        """Run *q* and return every row."""
        return await self._run(q, _FETCH, args)  # type: ignore[no-any-return]

    async def fetchval(self, q: Query[Any], args: Sequence[object]) -> object:
        """Run *q* and return the first column of its first row."""
        return await self._run(q, _FETCHVAL, args)

    async def execute(self, q: Query[Any], args: Sequence[object]) -> str:
        """Run *q* and return its status string (``'UPDATE 1'``)."""
        return str(await self._run(q, _EXECUTE, args))

    async def _run(
        self, q: Query[Any], method: Callable[..., Awaitable[Any]], args: Sequence[object]
    ) -> Any:
        db = self._db
        db.counters.queries += 1
        conn = self._conn
        self._deadlines.start(conn)
        started = perf_counter()
        try:
            result = await method(conn, q.sql, *args)
        except BaseException as exc:
            self._deadlines.stop(conn)
            error = self._fail(exc, q) if isinstance(exc, Exception) else exc
            if db.observers.active:
                elapsed = perf_counter() - started
                db.observers.emit(q.name, "error", elapsed, 0.0, True, error, q.sql)
            if error is exc:
                raise
            raise error from exc
        self._deadlines.stop(conn)
        if db.observers.active:
            db.observers.emit(q.name, "ok", perf_counter() - started, 0.0, True, None, q.sql)
        return result

    async def copy_records(
        self, table: str, *, schema: str, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
    ) -> int:
        """COPY *records* into *schema.table*; return the number of rows written."""
        self._db.counters.queries += 1
        conn = self._conn
        self._deadlines.start(conn)
        try:
            status = await conn.copy_records_to_table(
                table, schema_name=schema, columns=list(columns), records=records
            )
        except Exception as exc:
            raise self._fail(exc, None) from exc
        finally:
            self._deadlines.stop(conn)
        return int(str(status).rsplit(" ", 1)[-1])

    async def cursor(
        self, q: Query[Any], args: Sequence[object], *, prefetch: int = 1000
    ) -> AsyncGenerator[asyncpg.Record, None]:
        """Yield *q*'s rows through a server-side cursor, *prefetch* rows a round trip.

        Each fetch runs under command_timeout; errors are vdata errors.
        """
        conn = self._conn
        rows = conn.cursor(q.sql, *args, prefetch=prefetch).__aiter__()
        deadlines = self._deadlines
        while True:
            deadlines.start(conn)
            try:
                record = await rows.__anext__()
            except StopAsyncIteration:
                return
            except Exception as exc:
                raise self._fail(exc, q) from exc
            finally:
                deadlines.stop(conn)
            yield record

    def transaction(self) -> TransactionContext[Self]:
        """Return a savepoint inside this transaction, as an async context manager."""
        return TransactionContext(self._db, type(self), actor=self.actor, parent=self)

    def _fail(self, exc: BaseException, q: Query[Any] | None) -> VdataError:
        exc = self._deadlines.explain(self._conn, exc)
        err = exc if isinstance(exc, VdataError) else translate(exc, query=q.name if q else None)
        self._db.counters.failures[type(err).__name__] += 1
        return err


TxT = TypeVar("TxT", bound=Transaction)


class TransactionContext(Generic[TxT]):
    """``async with db.transaction() as tx``: commit on success, roll back on error.

    On the pool it acquires one connection for the whole block; inside
    another transaction it is a savepoint on that transaction's connection.
    """

    __slots__ = (
        "_conn",
        "_db",
        "_isolation",
        "_lease",
        "_parent",
        "_pg_tx",
        "_readonly",
        "_tx",
        "_tx_class",
        "actor",
        "as_user",
    )

    def __init__(
        self,
        db: Host,
        tx_class: type[TxT],
        *,
        actor: str | None = None,
        isolation: IsolationLevel | None = None,
        readonly: bool = False,
        parent: Transaction | None = None,
        as_user: uuid.UUID | None = None,
    ) -> None:
        if isolation not in _ISOLATION:
            raise ValueError(f"unknown isolation level {isolation!r}")
        self._db = db
        self._tx_class = tx_class
        self.actor = actor
        self.as_user = as_user
        self._isolation = isolation
        self._readonly = readonly
        self._parent = parent
        self._conn: asyncpg.Connection | None = None
        self._lease: asyncpg.Connection | None = None  # from the pool; to give back
        self._pg_tx: PgTransaction | None = None
        self._tx: TxT | None = None

    async def __aenter__(self) -> TxT:
        if self._parent is not None:
            # A savepoint: same connection, same actor unless given.
            conn = self._parent._conn
            readonly = self._parent.readonly
        else:
            conn = self._lease = await self._db.lease()
            readonly = self._readonly
        self._conn = conn
        pg_tx = conn.transaction(isolation=_ISOLATION[self._isolation], readonly=readonly)
        deadlines = self._db.deadlines
        deadlines.start(conn)
        try:
            # asyncpg's own context protocol marks the transaction "managed":
            # a cancelled block is then rolled back quietly on release.
            await pg_tx.__aenter__()
            if self.as_user is not None:
                # Row-level security's acting user, for this transaction only.
                await conn.fetchval(_acting_user_query().sql, str(self.as_user))
        except BaseException as exc:
            deadlines.stop(conn)
            error = translate(deadlines.explain(conn, exc)) if isinstance(exc, Exception) else exc
            self._report(error)
            self._release(failed=True)
            if isinstance(exc, Exception):
                raise error from exc
            raise
        deadlines.stop(conn)
        self._pg_tx = pg_tx
        self._tx = self._tx_class(self._db, conn, actor=self.actor, readonly=readonly)
        return self._tx

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._pg_tx is not None
        failed = exc_type is not None
        outcome = exc
        conn, deadlines = self._conn, self._db.deadlines
        deadlines.start(conn)
        try:
            # Commits when the block succeeded, rolls back otherwise.
            await self._pg_tx.__aexit__(exc_type, exc, tb)
        except BaseException as failure:
            failed = True
            if exc_type is None and isinstance(failure, Exception):
                outcome = translate(deadlines.explain(conn, failure))
                raise outcome from failure
            if not isinstance(failure, Exception):
                outcome = failure
                raise
            # The block already failed; its error is the one to report.
        finally:
            deadlines.stop(conn)
            self._report(outcome)
            self._release(failed=failed)

    def _report(self, outcome: BaseException | None) -> None:
        """Tell the breaker how the transaction went: it was one admitted call.

        ``Database.lease`` admitted it (``before_call``);
        the end of the block reports it, so timeouts and lost connections
        inside transactions open the breaker as pooled calls do, and a
        half-open trial slot is held until the transaction ends. A business
        error (the server answered) counts as a success. Savepoints report
        nothing: their transaction does.
        """
        if self._parent is not None:
            return
        if outcome is None:
            self._db.breaker.on_success()
        else:
            self._db.breaker.on_failure(outcome)

    def _release(self, *, failed: bool = False) -> None:
        self._conn = None
        if self._lease is not None:
            lease, self._lease = self._lease, None
            self._db.give_back(lease, failed=failed)


@cache
def _acting_user_query() -> Query[str]:
    # Loaded on first use from vdata's own sql/ (acting), as the signing key is.
    from vdata.queries import load

    return load().bind("acting.set_acting_user", str)
