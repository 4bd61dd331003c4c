"""Network faults between vdata and a real PostgreSQL, made by a loopback TCP proxy.

vdata connects through ``tests._faultproxy.FaultProxy``, which can black-hole
the network (nothing arrives, nothing fails), reset every connection, and
refuse new ones. Only the public contract is asserted: the vdata error
classes a caller sees, ``db.health()`` and the breaker's state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

import vdata
from tests._faultproxy import FaultProxy
from tests.integration._probe import install, q
from vdata.queries import Query, QueryKind
from vdata.testing.providers import Server

pytestmark = pytest.mark.integration
T = TypeVar("T")

COMMAND_TIMEOUT = 1.0
# An upper bound, never a tight timing: the error must come within about
# command_timeout (plus the release of the broken connection), not hang.
TIMEOUT_BOUND = 3 * COMMAND_TIMEOUT + 2.0
GUARD = 15.0  # a hang fails the test instead of stalling the run

# A write that is still running on the server when the network fails: it
# sleeps first, then inserts and commits (autocommit) exactly once.
SLOW_INSERT: Query[Any] = Query(
    name="faults.insert_note_after_sleep",
    sql="INSERT INTO probe.notes (body) SELECT $1 FROM pg_sleep($2::float8) RETURNING id, body",
    params=("body", "seconds"),
    kind=QueryKind.ONE,
    doc="Sleep for :seconds on the server, then insert a note.",
    path=Path(__file__),
    line=0,
)


def settings(**overrides: Any) -> vdata.Settings:
    """Small timeouts and a patient breaker, unless a test says otherwise."""
    values: dict[str, Any] = {
        "pool_min_size": 1,
        "pool_max_size": 4,
        "connect_timeout": 1.0,
        "acquire_timeout": 2.0,
        "command_timeout": COMMAND_TIMEOUT,
        "close_timeout": 2.0,
        "breaker_failure_threshold": 100,
        "breaker_cooldown": 0.5,
        "breaker_cooldown_jitter": 0.0,
        "retry_tries": 3,
        "retry_max_time": 2.0,
    }
    values.update(overrides)
    return vdata.Settings.build(**values)


@pytest.fixture
async def owner_dsn(vdata_dsn: str) -> str:
    await install(vdata_dsn)
    return vdata_dsn


@pytest.fixture
async def proxy(vdata_server: Server) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(vdata_server.host, vdata_server.port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def proxied_dsn(owner_dsn: str, vdata_app_dsn: str, proxy: FaultProxy) -> str:
    """The service role's DSN for this test's database, through the proxy."""
    return proxy.dsn(vdata_app_dsn)


async def bounded(call: Awaitable[T], limit: float = GUARD) -> T:
    """Await *call*; a hang fails the test (TimeoutError) instead of stalling the run."""
    async with asyncio.timeout(limit):
        return await call


async def timed(call: Awaitable[object]) -> tuple[float, Exception | None]:
    """Await *call* under the hang guard; return (seconds, the exception or None)."""
    started = time.perf_counter()
    try:
        await bounded(call)
    except Exception as exc:
        return time.perf_counter() - started, exc
    return time.perf_counter() - started, None


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def server_backends(owner_dsn: str, *, sleeping: bool = False) -> int:
    """Count vdata_app's backends on this test's database (only those in pg_sleep)."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND usename = 'vdata_app'"
                " AND pid <> pg_backend_pid()"
                " AND (NOT $1 OR (state = 'active' AND query LIKE '%pg_sleep%'))",
                sleeping,
            )
        )
    finally:
        await conn.close()


async def serves(db: vdata.Database) -> bool:
    """Return whether a call succeeds now (False while the breaker is open)."""
    try:
        return await bounded(db.fetchval(q("get_one"), ())) == 1
    except vdata.UnavailableError:
        return False


async def count_notes(db: vdata.Database, body: str | None = None) -> int:
    rows = await db.fetch(q("list_notes"), ())
    return sum(1 for r in rows if body is None or r["body"] == body)


async def assert_whole(db: vdata.Database, proxy: FaultProxy, owner_dsn: str) -> None:
    """The pool serves, and settles: nothing in use, no connection lost on either side."""
    for _ in range(10):
        # Distinct replies: a connection with a stale reply in flight would mix them up.
        assert await bounded(db.fetchval(q("get_one"), ())) == 1
        assert await bounded(db.fetchval(q("sleep"), (0,))) == "slept"

    async def settled() -> bool:
        # A connection whose call failed is reset (or dropped) in the
        # background, within command_timeout: wait for that, not longer.
        health = await bounded(db.health())
        size = health.pool.size
        return (
            health.ok
            and health.pool.in_use == 0
            and size <= health.pool.max_size
            and proxy.open == size
            and await server_backends(owner_dsn) == size
        )

    await wait_until(settled)


# -- a black-holed network ----------------------------------------------------


async def test_blackhole_pooled_read_times_out_then_heal_recovers(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    async with await vdata.connect(proxied_dsn, settings=settings()) as db:
        assert await db.fetchval(q("get_one"), ()) == 1
        accepted = proxy.accepted

        proxy.blackhole()
        try:
            elapsed, error = await timed(db.fetchval(q("get_one"), ()))
        finally:
            proxy.heal()
        print(f"blackholed pooled read failed after {elapsed:.3f} s")
        assert isinstance(error, vdata.QueryTimeoutError), repr(error)
        assert error.reason == "command_timeout"
        assert COMMAND_TIMEOUT * 0.9 <= elapsed < TIMEOUT_BOUND

        # The same Database serves again, on a new connection: the one that
        # timed out is never handed out again with a stale reply in flight.
        await assert_whole(db, proxy, owner_dsn)
        assert proxy.accepted > accepted
        assert (await bounded(db.health())).failures.get("QueryTimeoutError") == 1


async def test_blackhole_inside_a_transaction_times_out_and_rolls_back(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    async with await vdata.connect(proxied_dsn, settings=settings()) as db:
        started = 0.0

        async def unit_of_work() -> None:
            nonlocal started
            async with db.transaction(actor="ada") as tx:
                await tx.fetchrow(q("insert_note"), ("never committed",))
                proxy.blackhole()
                started = time.perf_counter()
                await tx.fetchval(q("get_one"), ())

        try:
            _, error = await timed(unit_of_work())
        finally:
            proxy.heal()
        elapsed = time.perf_counter() - started
        print(f"blackholed statement in a transaction failed after {elapsed:.3f} s")
        assert isinstance(error, vdata.QueryTimeoutError), repr(error)
        assert error.reason == "command_timeout"
        assert elapsed < TIMEOUT_BOUND

        await assert_whole(db, proxy, owner_dsn)
        assert await count_notes(db) == 0  # the server never saw a COMMIT
        async with db.transaction(actor="ada") as tx:
            await tx.fetchrow(q("insert_note"), ("committed",))
        assert await count_notes(db) == 1


async def test_repeated_command_timeouts_open_the_breaker(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    # docs/resilience.md: a client-side command_timeout means the server did
    # not answer at all, so it counts as an availability failure.
    conf = settings(pool_min_size=3, breaker_failure_threshold=2, breaker_cooldown=3.0)
    async with await vdata.connect(proxied_dsn, settings=conf) as db:
        assert await db.fetchval(q("get_one"), ()) == 1
        assert (await bounded(db.health())).pool.idle == 3
        proxy.blackhole()
        try:
            for _ in range(2):
                elapsed, error = await timed(db.fetchval(q("get_one"), ()))
                assert isinstance(error, vdata.QueryTimeoutError), repr(error)
                assert elapsed < TIMEOUT_BOUND
            assert db.breaker.state == "open"

            elapsed, error = await timed(db.fetchval(q("get_one"), ()))
            print(f"open breaker failed a call after {elapsed * 1000:.3f} ms")
            assert isinstance(error, vdata.UnavailableError), repr(error)
            assert error.reason == "breaker_open"
            assert elapsed < 0.05
        finally:
            proxy.heal()

        await wait_until(lambda: serves(db))
        assert db.breaker.state == "closed"
        await assert_whole(db, proxy, owner_dsn)


async def test_repeated_command_timeouts_in_transactions_open_the_breaker(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    # The same outage, seen by a service whose every call is a transaction.
    conf = settings(pool_min_size=3, breaker_failure_threshold=2, breaker_cooldown=3.0)
    async with await vdata.connect(proxied_dsn, settings=conf) as db:
        assert (await bounded(db.health())).pool.idle == 3

        async def unit_of_work() -> None:
            async with db.transaction() as tx:
                await tx.fetchval(q("get_one"), ())

        await unit_of_work()
        proxy.blackhole()
        try:
            for _ in range(2):  # the threshold; each on its own pooled connection
                elapsed, error = await timed(unit_of_work())
                assert isinstance(error, vdata.QueryTimeoutError), repr(error)
                assert elapsed < TIMEOUT_BOUND
            state = db.breaker.state
            # Open: the next unit of work fails fast, before taking a connection.
            elapsed, error = await timed(unit_of_work())
            assert isinstance(error, vdata.UnavailableError), repr(error)
            assert error.reason == "breaker_open"
            assert elapsed < 0.05
        finally:
            proxy.heal()
        assert state == "open"
        await wait_until(lambda: serves(db))
        await assert_whole(db, proxy, owner_dsn)


async def test_connecting_through_a_blackhole_is_unavailable_and_opens_the_breaker(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    # docs/resilience.md: a timeout while connecting is transient (retried,
    # then UnavailableError) and an availability failure for the breaker.
    conf = settings(pool_min_size=0, retry_tries=2, breaker_failure_threshold=2)
    async with await vdata.connect(proxied_dsn, settings=conf) as db:
        proxy.blackhole()
        try:
            elapsed, error = await timed(db.fetchval(q("get_one"), ()))
        finally:
            proxy.heal()
        print(f"connecting through a blackhole failed after {elapsed:.3f} s")
        assert isinstance(error, vdata.UnavailableError), repr(error)
        assert error.reason == "retries_exhausted"
        assert elapsed < 2 * 1.0 + 2.0
        assert db.breaker.state == "open"
        assert (await bounded(db.health())).connect_failures >= 2


async def test_health_of_a_blackholed_server_answers_within_its_timeout(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    # docs/resilience.md: health() runs its ping with a timeout and never raises.
    async with await vdata.connect(proxied_dsn, settings=settings()) as db:
        assert (await bounded(db.health())).ok
        proxy.blackhole()
        try:
            started = time.perf_counter()
            health = await bounded(db.health(timeout=0.5), 5.0)
            elapsed = time.perf_counter() - started
        finally:
            proxy.heal()
        print(f"health of a blackholed server answered after {elapsed:.3f} s")
        assert not health.ok and health.error
        assert elapsed < 0.5 + 2.0
        await assert_whole(db, proxy, owner_dsn)


async def test_a_call_the_caller_cancels_on_a_blackholed_network_returns_at_once(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    # docs/resilience.md: cancelling a call (an asyncio.timeout around it)
    # returns its connection to the pool.
    async with await vdata.connect(proxied_dsn, settings=settings(command_timeout=5.0)) as db:
        assert await db.fetchval(q("get_one"), ()) == 1
        proxy.blackhole()
        try:

            async def caller() -> object:
                async with asyncio.timeout(0.3):  # the caller's own deadline
                    return await db.fetchval(q("get_one"), ())

            elapsed, error = await timed(caller())
        finally:
            proxy.heal()
        print(f"cancelled call on a blackholed network returned after {elapsed:.3f} s")
        assert isinstance(error, TimeoutError), repr(error)
        assert elapsed < 0.3 + 2.0
        await assert_whole(db, proxy, owner_dsn)


# -- resets -------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [100, 5], ids=["patient-breaker", "default-threshold"])
async def test_reset_all_during_a_read_load(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str, threshold: int
) -> None:
    # 200 reads from 16 tasks on 8 connections; every connection is reset
    # three times. Reconnecting works at once, so a reset connection is no
    # evidence of an outage: with any threshold the retries absorb the resets
    # and the breaker stays closed.
    conf = settings(
        pool_min_size=2, pool_max_size=8, retry_tries=4, breaker_failure_threshold=threshold
    )
    async with await vdata.connect(proxied_dsn, settings=conf) as db:
        assert await db.fetchval(q("get_one"), ()) == 1
        todo = iter(range(200))
        done = 0
        raised: list[Exception] = []

        async def reader() -> None:
            nonlocal done
            for _ in todo:
                try:
                    assert await db.fetchval(q("sleep"), (0.002,)) == "slept"
                except Exception as exc:
                    raised.append(exc)
                done += 1
                if done in (40, 90, 140):
                    proxy.reset_all()  # with most of the 8 connections busy

        await bounded(asyncio.gather(*(reader() for _ in range(16))))

        reasons = sorted({str(getattr(e, "reason", None)) for e in raised})
        print(f"reads under resets: {200 - len(raised)} ok, {len(raised)} failed {reasons}")
        assert done == 200
        # Whatever failed, failed as a vdata error a caller can handle.
        for exc in raised:
            assert isinstance(exc, vdata.UnavailableError), repr(exc)
        assert (await bounded(db.health())).retries >= 1
        assert db.breaker.times_opened == 0
        assert len(raised) <= 5
        await assert_whole(db, proxy, owner_dsn)


async def test_refused_and_reset_opens_the_breaker_fails_fast_and_recovers(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    conf = settings(breaker_failure_threshold=3, breaker_cooldown=1.0, retry_tries=2)
    async with await vdata.connect(proxied_dsn, settings=conf) as db:
        assert await db.fetchval(q("get_one"), ()) == 1

        proxy.refuse()
        proxy.reset_all()
        for _ in range(4):
            _, error = await timed(db.fetchval(q("get_one"), ()))
            assert isinstance(error, vdata.UnavailableError), repr(error)
        down = await bounded(db.health(timeout=0.5), 5.0)
        assert not down.ok and down.error
        assert down.breaker.state == "open"
        assert down.breaker.times_opened >= 1

        # Open: calls fail at once, and no connection is even attempted.
        accepted = proxy.accepted
        slowest = 0.0
        for _ in range(20):
            elapsed, error = await timed(db.fetchval(q("get_one"), ()))
            assert isinstance(error, vdata.UnavailableError), repr(error)
            assert error.reason == "breaker_open"
            assert error.retry_after is not None and error.retry_after > 0
            slowest = max(slowest, elapsed)
        print(f"open breaker: slowest of 20 calls {slowest * 1000:.3f} ms")
        assert slowest < 0.05
        assert proxy.accepted == accepted

        proxy.allow()

        started = time.perf_counter()
        await wait_until(lambda: serves(db))
        print(f"recovered {time.perf_counter() - started:.3f} s after allow()")
        assert (await bounded(db.health())).breaker.state == "closed"
        await assert_whole(db, proxy, owner_dsn)


# -- writes are never applied twice -------------------------------------------


async def test_reset_during_an_insert_never_applies_it_twice(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    async with await vdata.connect(proxied_dsn, settings=settings(command_timeout=5.0)) as db:
        call = asyncio.create_task(db.fetchrow(SLOW_INSERT, ("once", 1.0)))

        async def on_server() -> bool:
            return await server_backends(owner_dsn, sleeping=True) == 1

        await wait_until(on_server)
        proxy.reset_all()
        _, error = await timed(call)

        # The caller sees the failure, as a vdata error that does not claim
        # the statement was never sent; vdata did not run it again.
        assert isinstance(error, vdata.TransientError), repr(error)
        assert not error.not_sent

        async def finished() -> bool:
            return await server_backends(owner_dsn, sleeping=True) == 0

        await wait_until(finished)
        # The server did run it, once: a retry would have inserted it twice.
        assert await count_notes(db, "once") == 1
        assert (await bounded(db.health())).retries == 0
        await assert_whole(db, proxy, owner_dsn)


async def test_write_after_idle_connections_were_reset_is_applied_once(
    proxied_dsn: str, proxy: FaultProxy, owner_dsn: str
) -> None:
    async with await vdata.connect(proxied_dsn, settings=settings(pool_min_size=2)) as db:
        assert await db.fetchval(q("get_one"), ()) == 1
        proxy.reset_all()
        await asyncio.sleep(0.1)  # the client sees the RSTs of its idle connections
        row = await db.fetchrow(q("insert_note"), ("after reset",))
        assert row is not None and row["body"] == "after reset"
        assert await count_notes(db, "after reset") == 1
        await assert_whole(db, proxy, owner_dsn)
