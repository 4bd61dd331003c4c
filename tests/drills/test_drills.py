"""Outage drills: real faults under load, checked from the outside, with their figures.

Each drill is bounded in time and prints what it measured (see the run's
summary, "vdata drills: figures"); docs/reliability.md states the guarantees.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Literal

import asyncpg
import pytest

import vdata
from tests._faultproxy import FaultProxy
from tests.drills._load import GUARD, Load, assert_pool_whole, p99, terminate_all, until
from tests.integration._probe import install, q
from vdata.testing import pgserver
from vdata.testing.providers import Server

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

Figure = Callable[[str], None]


@pytest.fixture
async def owner_dsn(vdata_dsn: str) -> str:
    await install(vdata_dsn)
    return vdata_dsn


# -- every backend terminated under load -----------------------------------------


async def test_termination_sweep_under_load(
    owner_dsn: str, vdata_app_dsn: str, figure: Figure
) -> None:
    # DEFAULT settings: 16 readers, 2 writers, every backend terminated twice.
    async with await vdata.connect(vdata_app_dsn, settings=vdata.Settings.build()) as db:
        opened: list[float] = []
        db.breaker.add_listener(lambda old, new: opened.append(1) if new == "open" else None)
        load = Load(db, readers=16, writers=2)
        killed = []
        async with asyncio.timeout(GUARD):
            for _ in range(2):
                await asyncio.sleep(0.7)
                killed.append(await terminate_all(owner_dsn))
            await asyncio.sleep(0.7)
            await load.finish()
        health = await db.health()
        ledger = await load.ledger.check(owner_dsn)
        figure(
            f"backends terminated {killed}; reads ok {load.reads}, reader errors "
            f"{sum(load.read_errors.values())} {dict(load.read_errors)}; retries "
            f"{health.retries}; breaker {db.breaker.state}, opened {len(opened)} times, "
            f"inconclusive {getattr(db.breaker, 'inconclusive', None)}; writer errors "
            f"{dict(load.ledger.errors)}; ledger {ledger}"
        )
        assert sum(killed) >= 10
        assert not load.read_errors
        assert db.breaker.state == "closed" and not opened
        # Writes that may have committed were not retried: any writer error
        # is a TransientError the ledger shows as all-or-nothing.
        for name in load.ledger.errors:
            assert name.startswith("TransientError"), name
        await assert_pool_whole(db, owner_dsn)


# -- pool exhaustion ----------------------------------------------------------------


async def test_pool_exhaustion_burst(owner_dsn: str, vdata_app_dsn: str, figure: Figure) -> None:
    settings = vdata.Settings.build(pool_max_size=4, acquire_timeout=0.4)
    async with await vdata.connect(vdata_app_dsn, settings=settings) as db:
        waits: list[float] = []
        outcomes: Counter[str] = Counter()

        async def call() -> None:
            started = time.perf_counter()
            try:
                assert await db.fetchval(q("sleep"), (0.02,)) == "slept"
                outcomes["ok"] += 1
            except vdata.UnavailableError as error:
                assert error.reason == "acquire_timeout", error
                assert "pool exhausted" in str(error)
                outcomes["acquire_timeout"] += 1
            waits.append(time.perf_counter() - started)

        async with asyncio.timeout(GUARD):
            await asyncio.gather(*(call() for _ in range(200)))
        figure(
            f"200 calls of 20 ms on 4 connections, acquire_timeout 0.4 s: {dict(outcomes)}; "
            f"slowest {max(waits):.3f} s; breaker {db.breaker.state}, "
            f"failures {db.breaker.failures}"
        )
        assert outcomes["ok"] >= 40 and outcomes["acquire_timeout"] >= 1
        assert max(waits) < 0.4 + 0.5
        assert db.breaker.state == "closed" and db.breaker.failures == 0
        assert await db.fetchval(q("get_one"), ()) == 1
        await assert_pool_whole(db, owner_dsn)


# -- the network black-holed, then healed -------------------------------------------


@pytest.fixture
async def proxy(vdata_server: Server) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(vdata_server.host, vdata_server.port) as fault_proxy:
        yield fault_proxy


async def test_network_blackholed_and_healed(
    owner_dsn: str, vdata_app_dsn: str, proxy: FaultProxy, figure: Figure
) -> None:
    settings = vdata.Settings.build(
        command_timeout=1.0,
        connect_timeout=1.0,
        breaker_cooldown=1.0,
        breaker_cooldown_jitter=0.0,
    )
    async with await vdata.connect(proxy.dsn(vdata_app_dsn), settings=settings) as db:
        opened_at: list[float] = []
        db.breaker.add_listener(
            lambda old, new: opened_at.append(time.monotonic()) if new == "open" else None
        )
        load = Load(db, readers=8, writers=0, pause=0.01)
        async with asyncio.timeout(GUARD):
            await asyncio.sleep(0.3)
            proxy.blackhole()
            holed = time.monotonic()
            await until(lambda: bool(opened_at), 10)
            await asyncio.sleep(0.5)
            fast: list[float] = []
            for _ in range(50):
                started = time.perf_counter()
                with pytest.raises(vdata.UnavailableError):
                    await db.fetchval(q("get_one"), ())
                fast.append(time.perf_counter() - started)
            proxy.heal()
            healed = time.monotonic()
            await until(lambda: load.last_ok >= healed, 10)
            recovered = load.last_ok - healed
            await asyncio.sleep(0.2)
            await load.finish()
        figure(
            f"command_timeout 1 s: breaker open {opened_at[0] - holed:.2f} s after the black "
            f"hole; open calls p99 {p99(fast) * 1000:.3f} ms; served again {recovered:.2f} s "
            f"after healing (cooldown 1 s); reader errors {dict(load.read_errors)}"
        )
        assert opened_at and opened_at[0] - holed < 1.0 * 1.25 + 1.5
        assert p99(fast) < 0.005
        assert 0 <= recovered < 1.0 + 3.0
        assert db.breaker.state == "closed"
        for name in load.read_errors:
            assert name.split("(")[0] in ("QueryTimeoutError", "UnavailableError"), name
        await assert_pool_whole(db, owner_dsn)


# -- random cancellation of thousands of calls -------------------------------------


async def test_random_cancellation_of_thousands_of_calls(
    owner_dsn: str, vdata_app_dsn: str, figure: Figure
) -> None:
    settings = vdata.Settings.build(pool_max_size=8)
    rng = random.Random(13)
    outcomes: Counter[str] = Counter()
    async with await vdata.connect(vdata_app_dsn, settings=settings) as db:

        async def unit(i: int) -> None:
            kind = rng.choice(("read", "sleep", "transaction"))
            try:
                async with asyncio.timeout(rng.uniform(0, 0.03)):
                    if kind == "read":
                        await db.fetchval(q("get_one"), ())
                    elif kind == "sleep":
                        await db.fetchval(q("sleep"), (0.002,))
                    else:
                        async with db.transaction(actor="drill") as tx:
                            await tx.fetchrow(q("insert_note"), (f"c{i}-a",))
                            await tx.fetchrow(q("insert_note"), (f"c{i}-b",))
                outcomes["completed"] += 1
            except TimeoutError:
                outcomes["cancelled"] += 1

        started = time.perf_counter()
        async with asyncio.timeout(GUARD):
            for batch in range(0, 3000, 50):
                await asyncio.gather(*(unit(i) for i in range(batch, batch + 50)))
        elapsed = time.perf_counter() - started
        await assert_pool_whole(db, owner_dsn)
        conn = await asyncpg.connect(owner_dsn)
        try:
            rows = await conn.fetch("SELECT body FROM probe.notes WHERE body LIKE 'c%'")
        finally:
            await conn.close()
        stored = Counter(r["body"] for r in rows)
        half = {b[:-2] for b in stored if stored[b[:-2] + "-a"] != stored[b[:-2] + "-b"]}
        figure(
            f"3000 calls in {elapsed:.1f} s: {dict(outcomes)}; transactions committed "
            f"{len(stored) // 2}, half-committed {len(half)}; pool whole, nothing left in a "
            f"transaction; breaker {db.breaker.state}"
        )
        assert outcomes["cancelled"] >= 300 and outcomes["completed"] >= 300
        assert not half and all(n == 1 for n in stored.values())
        assert db.breaker.state == "closed"
        assert await db.fetchval(q("get_one"), ()) == 1


# -- the server stopped mid-load ------------------------------------------------------


@pytest.fixture(scope="module")
def own_server() -> Iterator[pgserver.PgServer]:
    # A server of its own, durable as in production (a throwaway cluster has
    # fsync and synchronous_commit off, which loses acknowledged commits on
    # a crash by design): this drill stops and starts it.
    with pgserver.start(conf={"fsync": "on", "synchronous_commit": "on"}) as server:
        yield server


@pytest.fixture
async def own_dsns(own_server: pgserver.PgServer) -> tuple[str, str]:
    owner = own_server.dsn()
    conn = await asyncpg.connect(owner)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'vdata_app'"):
            await conn.execute("CREATE ROLE vdata_app LOGIN")
        await conn.execute("DROP SCHEMA IF EXISTS probe CASCADE")
    finally:
        await conn.close()
    await install(owner)
    return owner, own_server.dsn(user="vdata_app")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_server_stopped_mid_load(
    own_server: pgserver.PgServer,
    own_dsns: tuple[str, str],
    mode: Literal["fast", "immediate"],
    figure: Figure,
) -> None:
    owner_dsn, app_dsn = own_dsns
    settings = vdata.Settings.build(
        connect_timeout=1.0, breaker_cooldown=1.0, breaker_cooldown_jitter=0.0
    )
    async with await vdata.connect(app_dsn, settings=settings) as db:
        opened_at: list[float] = []
        db.breaker.add_listener(
            lambda old, new: opened_at.append(time.monotonic()) if new == "open" else None
        )
        load = Load(db, readers=8, writers=8, pause=0.002)
        try:
            async with asyncio.timeout(GUARD):
                await asyncio.sleep(1.0)
                stopped = time.monotonic()
                await asyncio.to_thread(own_server.stop_server, mode)
                await until(lambda: bool(opened_at), 10)
                fast: list[float] = []
                for _ in range(200):
                    started = time.perf_counter()
                    with pytest.raises(vdata.UnavailableError):
                        await db.fetchval(q("get_one"), ())
                    fast.append(time.perf_counter() - started)
                await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(own_server.start_server)
        started_again = time.monotonic()
        async with asyncio.timeout(GUARD):
            await until(lambda: load.last_ok >= started_again, 15)
            recovered = load.last_ok - started_again
            await asyncio.sleep(0.5)
            await load.finish()
        ledger = await load.ledger.check(owner_dsn)
        figure(
            f"pg_ctl stop -m {mode} under 8 readers + 8 writers: breaker open "
            f"{(opened_at[0] - stopped) * 1000:.0f} ms after the stop returned; open calls "
            f"p99 {p99(fast) * 1000:.3f} ms; served again {recovered:.2f} s after the "
            f"server was back (cooldown 1 s), same Database; writes {ledger}"
        )
        assert opened_at, "the breaker never opened on a stopped server"
        assert p99(fast) < 0.005
        assert 0 <= recovered < 1.0 + 5.0
        assert db.breaker.state == "closed"
