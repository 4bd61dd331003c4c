"""vdata's own connection pool (vdata/_connpool.py) on a real PostgreSQL.

The executors' tests (test_database.py: exhaustion, cancellation storms,
terminated backends, close with calls in flight) run through this pool too;
these cover what is particular to it: growth and shrinking, waiters, and
connections that die while others wait for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

import vdata
from tests.integration._probe import q

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(app_dsn: str) -> AsyncIterator[vdata.Database]:
    settings = vdata.Settings.build(
        pool_min_size=1, pool_max_size=3, acquire_timeout=5.0, retry_tries=1
    )
    async with await vdata.connect(app_dsn, settings=settings) as database:
        yield database


def sleep_args(seconds: float) -> Sequence[object]:
    return q("sleep").arguments((), {"seconds": seconds})


async def test_the_pool_grows_to_max_size_and_queues_the_rest(db: vdata.Database) -> None:
    assert db._pool.get_size() == 1
    # Six calls of 0.2 s on three connections: two waves, all answered.
    results = await asyncio.gather(*(db.fetchval(q("sleep"), sleep_args(0.2)) for _ in range(6)))
    assert results == ["slept"] * 6
    assert db._pool.get_size() == 3
    assert db._pool.get_idle_size() == 3
    health = await db.health()
    assert (health.pool.size, health.pool.idle, health.pool.in_use) == (3, 3, 0)
    assert (health.pool.min_size, health.pool.max_size) == (1, 3)


async def test_a_waiter_gets_a_new_connection_when_a_busy_one_dies(
    db: vdata.Database, vdata_dsn: str
) -> None:
    # Fill the pool with transactions, then queue a call behind them.
    holders = [db.transaction() for _ in range(3)]
    txs = [await h.__aenter__() for h in holders]
    pids = [await tx.fetchval(q("backend_pid"), ()) for tx in txs]
    waiter = asyncio.ensure_future(db.fetchval(q("get_one"), ()))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    # The server ends the first transaction's backend; its block fails and
    # gives the dead connection back, which frees a slot for the waiter.
    admin = await asyncpg.connect(vdata_dsn)
    try:
        await admin.fetchval("SELECT pg_terminate_backend($1)", pids[0])
    finally:
        await admin.close()
    with pytest.raises(vdata.VdataError):
        await txs[0].fetchval(q("get_one"), ())
    with pytest.raises(vdata.VdataError):
        await holders[0].__aexit__(None, None, None)
    assert await asyncio.wait_for(waiter, 5) == 1
    for h in holders[1:]:
        await h.__aexit__(None, None, None)
    assert db._pool.get_size() == 3
    assert db._pool.get_idle_size() == 3


async def test_idle_connections_above_min_size_are_closed(app_dsn: str) -> None:
    settings = vdata.Settings.build(
        pool_min_size=1, pool_max_size=4, max_inactive_connection_lifetime=0.3
    )
    async with await vdata.connect(app_dsn, settings=settings) as db:
        await asyncio.gather(*(db.fetchval(q("sleep"), sleep_args(0.1)) for _ in range(4)))
        assert db._pool.get_size() == 4
        for _ in range(40):  # bounded: about 2 s
            if db._pool.get_size() == 1:
                break
            await asyncio.sleep(0.05)
        assert db._pool.get_size() == 1
        assert await db.fetchval(q("get_one"), ()) == 1


async def test_a_cancelled_waiter_takes_no_connection_with_it(db: vdata.Database) -> None:
    holders = [db.transaction() for _ in range(3)]
    txs = [await h.__aenter__() for h in holders]
    waiters = [asyncio.ensure_future(db.fetchval(q("get_one"), ())) for _ in range(5)]
    await asyncio.sleep(0.05)
    for w in waiters[:4]:
        w.cancel()
    for h in holders:
        await h.__aexit__(None, None, None)
    assert await asyncio.wait_for(waiters[4], 5) == 1
    assert all(w.cancelled() for w in waiters[:4])
    assert txs  # the transactions were used above
    assert db._pool.get_idle_size() == db._pool.get_size() == 3


async def test_a_closed_pool_refuses_calls_and_wakes_its_waiters(app_dsn: str) -> None:
    settings = vdata.Settings.build(pool_min_size=1, pool_max_size=1, acquire_timeout=10.0)
    db = await vdata.connect(app_dsn, settings=settings)
    holder = db.transaction()
    await holder.__aenter__()
    waiter = asyncio.ensure_future(db.fetchval(q("get_one"), ()))
    await asyncio.sleep(0.05)
    closing = asyncio.ensure_future(db.close(timeout=0.2))
    with pytest.raises(vdata.UnavailableError):
        await asyncio.wait_for(waiter, 5)
    await asyncio.wait_for(closing, 5)
    with pytest.raises(vdata.VdataError):
        await holder.__aexit__(None, None, None)
    with pytest.raises(vdata.UnavailableError):
        await db.fetchval(q("get_one"), ())
    assert db._pool.get_size() == 0


async def test_a_connection_handed_to_a_waiter_cancelled_at_that_moment_comes_back(
    db: vdata.Database,
) -> None:
    pool = db._pool
    held = [await pool.acquire(None) for _ in range(3)]  # the pool is full
    waiter = asyncio.ensure_future(pool.acquire(5.0))
    await asyncio.sleep(0.05)  # it waits now
    pool.release(held[0])  # handed to the waiter ...
    waiter.cancel()  # ... which is cancelled before it could take it
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.get_idle_size() == 1  # given back, not lost with the waiter
    for conn in held[1:]:
        pool.release(conn)
    assert pool.get_idle_size() == pool.get_size() == 3


async def test_a_connection_given_back_inside_a_transaction_is_never_handed_out(
    db: vdata.Database,
) -> None:
    pool = db._pool
    conn = await pool.acquire(None)
    await conn.execute("BEGIN")
    pool.release(conn)  # not vdata's way: it is terminated, not reused
    assert conn.is_closed()
    assert conn not in pool._free
    assert await db.fetchval(q("get_one"), ()) == 1
    async with db.transaction() as tx:  # a fresh connection, outside any transaction
        assert await tx.fetchval(q("get_one"), ()) == 1
