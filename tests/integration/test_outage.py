"""A server that goes away mid-use: the breaker opens, fails fast, and vdata recovers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import pytest

import vdata
from tests.integration._probe import q
from vdata.testing import pgserver

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def own_server() -> Iterator[pgserver.PgServer]:
    # A server of its own: this module stops and starts it.
    with pgserver.start() as server:
        yield server


@pytest.fixture
async def app_dsn(own_server: pgserver.PgServer) -> str:
    conn = await asyncpg.connect(own_server.dsn())
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'vdata_app'")
        if not exists:
            await conn.execute("CREATE ROLE vdata_app LOGIN")
    finally:
        await conn.close()
    return own_server.dsn(user="vdata_app")


async def wait_until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_outage_opens_the_breaker_and_recovery_needs_no_restart(
    own_server: pgserver.PgServer, app_dsn: str
) -> None:
    settings = vdata.Settings.build(
        pool_min_size=1,
        pool_max_size=2,
        connect_timeout=1.0,
        breaker_failure_threshold=3,
        breaker_cooldown=0.5,
        breaker_cooldown_jitter=0.0,
        retry_tries=2,
        retry_max_time=1.0,
    )
    async with await vdata.connect(app_dsn, settings=settings) as db:
        assert await db.fetchval(q("get_one"), ()) == 1
        before = await db.health()
        assert before.ok

        own_server.stop_server("fast")
        try:
            # Calls fail with UnavailableError (retries exhausted, then open).
            errors: list[vdata.VdataError] = []
            for _ in range(6):
                with pytest.raises(vdata.UnavailableError) as caught:
                    await db.fetchval(q("get_one"), ())
                errors.append(caught.value)
            assert db.breaker.state == "open"
            assert db.breaker.times_opened >= 1

            # While open, a call fails fast, without touching the network.
            started = time.perf_counter()
            with pytest.raises(vdata.UnavailableError) as fast:
                await db.fetchval(q("get_one"), ())
            assert time.perf_counter() - started < 0.05
            assert fast.value.retry_after is not None

            down = await db.health()
            assert not down.ok and down.error
            assert down.breaker.state == "open"
            assert down.connect_failures >= 1
        finally:
            own_server.start_server()

        # After the cooldown a trial call passes, the circuit closes, and the
        # same Database object serves again.
        async def healthy() -> bool:
            try:
                return await db.fetchval(q("get_one"), ()) == 1
            except vdata.UnavailableError:
                return False

        await wait_until(healthy)
        assert db.breaker.state == "closed"
        after = await db.health()
        assert after.ok and after.breaker.state == "closed"


async def test_connect_to_a_stopped_server_is_unavailable(own_server: pgserver.PgServer) -> None:
    settings = vdata.Settings.build(connect_timeout=1.0)
    dead = own_server.dsn().replace(str(own_server.port), str(own_server.port + 1))
    with pytest.raises(vdata.UnavailableError) as caught:
        await vdata.connect(dead, settings=settings)
    assert "cannot connect" in str(caught.value)
