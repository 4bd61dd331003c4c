"""command_timeout on a real PostgreSQL: the watchdog that replaced asyncpg's per-call timer.

``statement_timeout`` is set far above ``command_timeout`` here, so only the
client-side limit can stop the statement: the server keeps sleeping and the
client must give up on its own, as it would if the server stopped answering.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence

import pytest

import vdata
from tests.integration._probe import install, q

pytestmark = pytest.mark.integration

LIMIT = 0.4  # command_timeout of these tests, seconds


@pytest.fixture
async def db(vdata_dsn: str, vdata_app_dsn: str) -> AsyncIterator[vdata.Database]:
    await install(vdata_dsn)
    settings = vdata.Settings.build(
        pool_min_size=2,
        pool_max_size=2,
        command_timeout=LIMIT,
        statement_timeout=30.0,
        retry_tries=1,
    )
    async with await vdata.connect(vdata_app_dsn, settings=settings) as database:
        yield database


def sleep_args(seconds: float) -> Sequence[object]:
    return q("sleep").arguments((), {"seconds": seconds})


async def test_a_pooled_statement_past_command_timeout_gives_query_timeout_error(
    db: vdata.Database, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="vdata"),
        pytest.raises(vdata.QueryTimeoutError) as caught,
    ):
        await db.fetchval(q("sleep"), sleep_args(20))
    elapsed = time.monotonic() - started
    # The watchdog wakes every command_timeout / 4: the call ends between the
    # limit and about 1.25 times it (plus scheduling on a busy machine).
    assert LIMIT <= elapsed < LIMIT + 3.0, elapsed
    assert caught.value.reason == "command_timeout"
    assert caught.value.query == "probe.sleep"
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert any("command_timeout" in r.getMessage() for r in caplog.records)
    # The pool replaced the terminated connection; the next calls work.
    for _ in range(4):
        assert await db.fetchval(q("get_one"), ()) == 1
    report = await db.health()
    assert report.ok
    assert report.failures.get("QueryTimeoutError") == 1


async def test_a_statement_in_a_transaction_past_command_timeout_fails_the_block(
    db: vdata.Database,
) -> None:
    with pytest.raises(vdata.QueryTimeoutError) as caught:
        async with db.transaction() as tx:
            await tx.fetchval(q("get_one"), ())
            await tx.fetchval(q("sleep"), sleep_args(20))
    assert caught.value.reason == "command_timeout"
    # Both connections can be used again, at the same time.
    async with db.transaction() as a, db.transaction() as b:
        assert await a.fetchval(q("get_one"), ()) == 1
        assert await b.fetchval(q("get_one"), ()) == 1


async def test_a_cursor_fetch_past_command_timeout_gives_query_timeout_error(
    db: vdata.Database,
) -> None:
    seen: list[int] = []
    args = q("slow_rows").arguments((), {"rows": 3, "seconds": 0.1})
    # Each fetch of one row takes 0.1 s: well within the limit.
    async with db.transaction() as tx:
        seen = [r["n"] async for r in tx.cursor(q("slow_rows"), args, prefetch=1)]
    assert seen == [1, 2, 3]
    args = q("slow_rows").arguments((), {"rows": 3, "seconds": 5.0})
    with pytest.raises(vdata.QueryTimeoutError):
        async with db.transaction() as tx:
            async for _ in tx.cursor(q("slow_rows"), args, prefetch=1):
                pass
    assert await db.fetchval(q("get_one"), ()) == 1


async def test_statements_within_the_limit_are_untouched_and_the_watchdog_stops(
    db: vdata.Database,
) -> None:
    # Many statements, each well inside the limit, most of them concurrent:
    # none is terminated, however long the run as a whole takes.
    async def work() -> None:
        for _ in range(20):
            assert await db.fetchval(q("sleep"), sleep_args(0.01)) == "slept"

    await asyncio.gather(*(work() for _ in range(4)))
    assert db.deadlines.in_flight() == 0
    report = await db.health()
    assert report.failures.get("QueryTimeoutError") is None
    # With nothing in flight the watchdog ends itself within one period.
    await asyncio.sleep(LIMIT / 4 + 0.3)
    assert not db.deadlines.watching()
    # ... and starts again with the next statement.
    with pytest.raises(vdata.QueryTimeoutError):
        await db.fetchval(q("sleep"), sleep_args(20))


async def test_a_cancelled_statement_leaves_no_deadline_behind(db: vdata.Database) -> None:
    for _ in range(10):
        task = asyncio.ensure_future(db.fetchval(q("sleep"), sleep_args(1)))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert db.deadlines.in_flight() == 0
    assert await db.fetchval(q("get_one"), ()) == 1
