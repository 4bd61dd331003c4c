"""Database: the connection pool behind a circuit breaker, retries and error translation.

It is the pooled executor that repositories run on, and it holds the
registered areas (``db.<area>``): a composition, not a mixin of them.
"""

from __future__ import annotations

__all__ = ["Database"]

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import asyncpg
import msgspec

from vdata.engine import connect as _pool
from vdata.engine.areas import Areas, R
from vdata.engine.breaker import CircuitBreaker
from vdata.engine.deadlines import Deadlines
from vdata.engine.failures import is_transient, proves_not_sent, translate
from vdata.engine.health import Counters, Health, PoolHealth, health_report, pool_health
from vdata.engine.observe import Observers, Outcome, StatementListener
from vdata.engine.pool import ConnectionPool, pool_closed
from vdata.engine.replicas import Freshness, Replicas, preference, reads
from vdata.engine.repository import Repository
from vdata.engine.retry import rerun, retry_call
from vdata.engine.transaction import IsolationLevel, Transaction, TransactionContext
from vdata.errors import Stage, TransientError, UnavailableError, VdataError
from vdata.queries import Query
from vdata.security.cursors import CursorKeys
from vdata.settings import Settings

log = logging.getLogger("vdata.database")
slow_log = logging.getLogger("vdata.query")
T = TypeVar("T")
TxT = TypeVar("TxT", bound=Transaction)

# Bound methods of asyncpg's Connection, looked up once: the hot path calls
# them on the pooled connection without a getattr per call.
_FETCHROW = asyncpg.Connection.fetchrow
_FETCH = asyncpg.Connection.fetch
_FETCHVAL = asyncpg.Connection.fetchval
_EXECUTE = asyncpg.Connection.execute


class Database(Generic[TxT]):
    """A pool of connections to one PostgreSQL, and the repositories on it.

    ``db.<area>`` is the repository registered under that name, bound to
    the pool; ``db.transaction()`` yields a *transaction_class* holding the
    same areas on one connection.
    """

    actor: str | None = None  # writes on the pool name their actor explicitly
    in_transaction = False

    def __init__(
        self,
        settings: Settings,
        pool: ConnectionPool,
        *,
        transaction_class: type[TxT],
        areas: Mapping[str, type[Repository]] | None = None,
        replicas: Replicas | None = None,
    ) -> None:
        self.areas = Areas(areas or {}, reserved=_RESERVED)
        # Read replicas (vdata.engine.replicas), and when this Database's
        # last write ended: lag-tolerant reads wait for a replica past it.
        self.replicas = replicas
        self.last_write = float("-inf")
        # The path of a pooled call, chosen once: without replicas, straight
        # to the primary (no routing step on the hot path).
        self._path = self._run if replicas is None else self._routed
        self.transaction_class = transaction_class
        self.settings = settings
        self._pool = pool
        self.counters = Counters()
        self.observers = Observers()
        self.breaker = CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            cooldown=settings.breaker_cooldown,
            min_cooldown=settings.breaker_min_cooldown,
            jitter=settings.breaker_cooldown_jitter,
            half_open_max_calls=settings.breaker_half_open_max_calls,
        )
        self._acquire_timeout = settings.acquire_timeout
        # command_timeout, enforced by one watchdog (vdata/_deadline.py).
        self.deadlines = Deadlines(settings.command_timeout)
        self._slow = settings.slow_query_threshold
        # Keyset cursors' codec: secret_key, or the database's key, read once.
        self.cursor_keys = CursorKeys(settings.secret_key)
        self._closed = False
        self._close_hooks: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        transaction_class: type[TxT],
        areas: Mapping[str, type[Repository]] | None = None,
    ) -> Self:
        """Open the pool for *settings*; return a Database holding *areas*.

        Raise ConfigurationError when there is no DSN or it is malformed,
        UnavailableError when the server cannot be reached.
        """
        settings = await _pool.settle_pooler(settings)
        pool = await _pool.create_pool(settings)
        replicas = None
        if settings.replica_dsns:
            replicas = Replicas.start(settings, pool)
        return cls(
            settings, pool, transaction_class=transaction_class, areas=areas, replicas=replicas
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.breaker.state
        return f"<vdata.Database {self.settings!r} {state}>"

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: an area's first access.
        if name.startswith("_") or name == "areas":
            raise AttributeError(name)
        return self.areas.instance(self, name)

    def area(self, cls: type[R]) -> R:
        """Return the registered repository of class *cls* on the pool (typed)."""
        return self.areas.of_class(self, cls)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, timeout: float | None = None) -> None:
        """Wait up to *timeout* (default ``close_timeout``) for calls in flight, then close.

        Connections still busy when the time is up are terminated; their
        callers get UnavailableError.
        """
        if self._closed:
            return
        # Hooks run while the pool still works (e.g. flushing buffered API-key
        # usage); a failing hook is logged and does not keep the pool open.
        for hook in self._close_hooks:
            try:
                await hook()
            except Exception:
                log.exception("close: a close hook failed")
        self._closed = True
        limit = self.settings.close_timeout if timeout is None else timeout
        if self.replicas is not None:
            await self.replicas.close(limit)
        if not await self._pool.close(limit):
            log.warning("close: calls still in flight after %.1f s; terminated", limit)
        await self.deadlines.close()

    def add_close_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Have ``close()`` await *hook* first, while the pool is still open."""
        self._close_hooks.append(hook)

    # -- the executor ----------------------------------------------------

    async def fetchrow(self, q: Query[Any], args: Sequence[object]) -> asyncpg.Record | None:
        """Run *q* on a pooled connection; return its first row or None."""
        return await self._path(q, _FETCHROW, args)

    async def fetch(self, q: Query[Any], args: Sequence[object]) -> list[asyncpg.Record]:
        """Run *q* on a pooled connection; return every row."""
        return await self._path(q, _FETCH, args)  # type: ignore[no-any-return]

    async def fetchval(self, q: Query[Any], args: Sequence[object]) -> object:
        """Run *q* on a pooled connection; return the first column of the first row."""
        return await self._path(q, _FETCHVAL, args)

    async def execute(self, q: Query[Any], args: Sequence[object]) -> str:
        """Run *q* on a pooled connection; return its status string."""
        return str(await self._path(q, _EXECUTE, args))

    async def _routed(
        self, q: Query[Any], method: Callable[..., Awaitable[Any]], args: Sequence[object]
    ) -> Any:
        """With replicas: a lag-tolerant read may go to one; a write notes when it ended."""
        replicas = self.replicas
        assert replicas is not None
        if not q.read_only:
            try:
                return await self._run(q, method, args)
            finally:  # failed or not, it may have committed
                self.last_write = time.monotonic()
        wanted = preference()
        if wanted == "tolerant" or (wanted is None and q.lag_tolerant):
            replica = replicas.pick(self.last_write)
            if replica is not None:
                started = time.perf_counter()
                try:
                    result = await replicas.run(replica, q, method, args, self.deadlines)
                except VdataError as error:
                    back = replicas.falls_back(error)
                    if self.observers.active:  # "retried": it runs again, on the primary
                        elapsed = time.perf_counter() - started
                        outcome: Outcome = "retried" if back else "error"
                        self.observers.emit(q.name, outcome, elapsed, 0.0, False, error, q.sql)
                    if not back:
                        raise
                    replica.fallbacks += 1
                    log.info("read %s fell back to the primary: %s", q.name, error.reason)
                else:
                    if self.observers.active:
                        elapsed = time.perf_counter() - started
                        self.observers.emit(q.name, "ok", elapsed, 0.0, False, None, q.sql)
                    return result
        return await self._run(q, method, args)

    async def _run(
        self, q: Query[Any], method: Callable[..., Awaitable[Any]], args: Sequence[object]
    ) -> Any:
        try:
            return await self._attempt(q, method, args)
        except BaseException as error:
            # A read may run again; a write only if it provably never left
            # the client (DESIGN.md: retries never duplicate a write).
            retry = (
                isinstance(error, VdataError)
                and is_transient(error)
                and (q.read_only or error.not_sent)
            )
            if not retry:
                self._report(q, error, "error")
                raise
            first = error  # reported by _count_retry if retried, else below
        try:
            return await retry_call(
                lambda: self._attempt(q, method, args),
                tries=self.settings.retry_tries - 1,
                max_time=self.settings.retry_max_time,
                retry_on=lambda e: is_transient(e) and (q.read_only or proves_not_sent(e)),
                on_retry=lambda e, n: self._count_retry(e, n, q),
                name=q.name,
                first_error=first,
            )
        except BaseException as last:
            # The attempt that ended it (exhausted retries wrap it as the cause).
            self._report(q, last, "error")
            self._report(q, last.__cause__, "error")
            raise

    async def _attempt(
        self, q: Query[Any], method: Callable[..., Awaitable[Any]], args: Sequence[object]
    ) -> Any:
        if self._closed:
            raise self._measured(pool_closed(), 0.0, 0.0)
        breaker = self.breaker
        try:
            breaker.before_call()  # raises UnavailableError while the circuit is open
        except UnavailableError as refused:
            if self.observers.active:
                self.observers.emit(q.name, "refused", 0.0, 0.0, False, refused, q.sql)
            raise
        counters = self.counters
        counters.queries += 1
        pool = self._pool
        # The fast path takes a free connection without awaiting anything.
        conn = pool.try_acquire()
        wait = 0.0
        if conn is None:
            waited = time.perf_counter()
            try:
                conn = await self._acquire(q)
            except BaseException as failed:
                self._measured(failed, 0.0, time.perf_counter() - waited)
                raise
            wait = time.perf_counter() - waited
        deadlines = self.deadlines
        started = time.perf_counter()
        deadlines.start(conn)
        try:
            result = await method(conn, q.sql, *args)
        except BaseException as caught:
            deadlines.stop(conn)
            cause = deadlines.explain(conn, caught)
            if isinstance(cause, asyncpg.exceptions.InternalClientError):
                conn.terminate()  # out of step with its server: never reuse it
            error = self._failed(cause, q, None)
            pool.release_dirty(conn)  # may be mid-protocol: full reset
            raise self._measured(error, time.perf_counter() - started, wait) from cause
        deadlines.stop(conn)
        pool.release(conn)
        breaker.on_success()
        elapsed = time.perf_counter() - started
        if elapsed >= self._slow:
            counters.slow_queries += 1
            slow_log.warning("slow query %s took %.1f ms", q.name, elapsed * 1000)
        if self.observers.active:
            self.observers.emit(q.name, "ok", elapsed, wait, False, None, q.sql)
        return result

    def _measured(self, error: BaseException, duration: float, wait: float) -> BaseException:
        """Keep a failed attempt's timings on *error* until its outcome is known.

        Whether a failed attempt is retried is decided by the caller
        (``_run`` and the retry policy), so its event is emitted there, by
        ``_report``; nothing is kept when no one listens.
        """
        if self.observers.active:
            error.__dict__[_TIMING] = (duration, wait)
        return error

    def _report(self, q: Query[Any], error: BaseException | None, outcome: Outcome) -> None:
        """Emit the event of the failed attempt that raised *error*, once."""
        if error is None or not self.observers.active:
            return
        timing = error.__dict__.pop(_TIMING, None)
        if timing is not None:
            self.observers.emit(q.name, outcome, timing[0], timing[1], False, error, q.sql)

    async def _acquire(self, q: Query[Any] | None) -> asyncpg.Connection:
        """Open or wait for a connection (no free one); failures as vdata errors."""
        try:
            return await self._pool.acquire(self._acquire_timeout)
        except BaseException as exc:
            raise self._failed(exc, q, "acquire") from exc

    def _failed(self, exc: BaseException, q: Query[Any] | None, stage: Stage) -> BaseException:
        """Record *exc* with the breaker and counters; return what to raise.

        A cancellation (or any BaseException) propagates unchanged; every
        Exception becomes a vdata error naming the query. The breaker sees
        the error translated with its *stage*: a raw ``TimeoutError`` from
        waiting for a busy pool is back-pressure, not a timeout of the server.
        """
        if not isinstance(exc, Exception):
            self.breaker.on_failure(exc)
            return exc
        error = translate(exc, query=q.name if q is not None else None, stage=stage)
        self.breaker.on_failure(error)
        if stage is not None and error.reason != "acquire_timeout":
            self.counters.connect_failures += 1
        self.counters.failures[type(error).__name__] += 1
        return error

    def _count_retry(self, error: BaseException, attempt: int, q: Query[Any] | None = None) -> None:
        self.counters.retries += 1
        if q is not None:
            self._report(q, error, "retried")

    # -- observing ---------------------------------------------------------

    def add_statement_listener(self, listener: StatementListener) -> None:
        """Call *listener* with a ``vdata.StatementEvent`` after every statement attempt.

        On the pool and in transactions; names, outcome and timings only,
        never parameters or rows. ``vdata.QueryStats`` is a ready listener.
        """
        self.observers.add(listener)

    def remove_statement_listener(self, listener: StatementListener) -> None:
        """Stop calling *listener*; raise ValueError if it was never added."""
        self.observers.remove(listener)

    def pool_health(self) -> PoolHealth:
        """Return the pool's size and use now, without touching the server."""
        return pool_health(self._pool)

    # -- transactions -----------------------------------------------------

    def transaction(
        self,
        actor: str | None = None,
        isolation: IsolationLevel | None = None,
        readonly: bool = False,
        *,
        as_user: uuid.UUID | None = None,
    ) -> TransactionContext[TxT]:
        """Return ``async with db.transaction() as tx``: one connection, all or nothing.

        *as_user* makes that user the acting user of row-level security for
        the whole transaction (docs/security.md); it ends with the transaction.
        """
        return TransactionContext(
            self,
            self.transaction_class,
            actor=actor,
            isolation=isolation,
            readonly=readonly,
            as_user=as_user,
        )

    async def run_in_transaction(
        self,
        fn: Callable[[TxT], Awaitable[T]],
        *,
        retries: int = 3,
        actor: str | None = None,
        isolation: IsolationLevel | None = "serializable",
        readonly: bool = False,
        as_user: uuid.UUID | None = None,
    ) -> T:
        """Run ``fn(tx)`` in a transaction; re-run it whole on serialization failure or deadlock."""

        async def once() -> T:
            async with self.transaction(
                actor=actor, isolation=isolation, readonly=readonly, as_user=as_user
            ) as tx:
                return await fn(tx)

        return await rerun(
            once,
            retries=retries,
            max_time=self.settings.retry_max_time,
            on_retry=self._count_retry,
        )

    async def lease(self) -> asyncpg.Connection:
        """Take a connection for a whole transaction: breaker admitted, transient failures retried.

        The transaction reports its outcome to the breaker when it ends and
        gives the connection back with :meth:`give_back`.
        """

        async def acquire() -> asyncpg.Connection:
            if self._closed:
                raise pool_closed()
            self.breaker.before_call()
            # No on_success here: taking a connection proves nothing about the
            # server. The transaction reports its outcome when it ends.
            return self._pool.try_acquire() or await self._acquire(None)

        try:
            return await acquire()
        except TransientError as first:
            # Acquiring sends no statement, so it is always safe to retry.
            return await retry_call(
                acquire,
                tries=self.settings.retry_tries - 1,
                max_time=self.settings.retry_max_time,
                retry_on=is_transient,
                on_retry=self._count_retry,
                name="acquire",
                first_error=first,
            )

    def give_back(self, conn: asyncpg.Connection, *, failed: bool = False) -> None:
        """Return a leased connection; *failed* has it reset before reuse."""
        # The transaction has ended (committed, rolled back, or unknown):
        # read-your-writes counts from here (vdata.engine.replicas).
        self.last_write = time.monotonic()
        if failed:
            self._pool.release_dirty(conn)
        else:
            self._pool.release(conn)

    # -- health -----------------------------------------------------------

    async def health(self, timeout: float = 2.0) -> Health:
        """Return the state of server, pool, breaker and each replica; never raises."""
        report = await health_report(self._pool, self.breaker, self.counters, timeout=timeout)
        if self.replicas is None:
            return report
        return msgspec.structs.replace(report, replicas=self.replicas.health())

    # -- read routing -------------------------------------------------------

    def reads(self, freshness: Freshness) -> AbstractContextManager[None]:
        """``with db.reads("fresh")``: reads in this block stay on the primary.

        ``with db.reads("tolerant")``: every read-only query on the pool in
        this block may go to a replica (not only those bound
        ``lag_tolerant=True``). Inside ``db.transaction()`` everything runs
        on the transaction's connection, on the primary, whatever is asked.
        The choice holds for the current asyncio task (a context variable).
        """
        return reads(freshness)


# Where a failed attempt's (duration, pool wait) waits on its error for _report.
_TIMING = "_vdata_attempt_timing"

# Attribute names an area may not take: the Database's and Transaction's own.
_RESERVED = frozenset(
    name for cls in (Database, Transaction) for name in dir(cls) if not name.startswith("_")
) | {
    "areas",
    "settings",
    "breaker",
    "counters",
    "deadlines",
    "actor",
    "readonly",
    "cursor_keys",
    "observers",
    "replicas",
    "last_write",
}
