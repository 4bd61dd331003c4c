"""Database and Transaction on a real PostgreSQL: commit, rollback, timeouts, pool limits."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest

import vdata
from tests.integration._probe import q

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(app_dsn: str) -> AsyncIterator[vdata.Database]:
    settings = vdata.Settings.build(pool_max_size=4, statement_timeout=5.0)
    async with await vdata.connect(app_dsn, settings=settings) as database:
        yield database


def args(name: str, **values: object) -> Sequence[object]:
    """Return the positional arguments of probe query *name* (in the SQL's order)."""
    return q(name).arguments((), values)


async def count_notes(db: vdata.Database) -> int:
    return int(str(await db.fetchval(q("count_notes"), ())))


async def test_pooled_calls_return_rows_values_and_status(db: vdata.Database) -> None:
    assert await db.fetchval(q("get_one"), ()) == 1
    row = await db.fetchrow(q("insert_note"), ("hello",))
    assert row is not None and row["body"] == "hello"
    assert [r["body"] for r in await db.fetch(q("list_notes"), ())] == ["hello"]
    assert await db.execute(q("withdraw"), args("withdraw", account="a", amount=1)) == "UPDATE 1"


async def test_transaction_commits_on_success(db: vdata.Database) -> None:
    async with db.transaction(actor="ada") as tx:
        assert tx.actor == "ada"
        await tx.fetchrow(q("insert_note"), ("kept",))
    assert await count_notes(db) == 1


async def test_transaction_rolls_back_on_any_exception(db: vdata.Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.fetchrow(q("insert_note"), ("lost",))
            raise RuntimeError("boom")
    assert await count_notes(db) == 0


async def test_nested_transaction_is_a_savepoint(db: vdata.Database) -> None:
    async with db.transaction() as tx:
        await tx.fetchrow(q("insert_note"), ("outer",))
        with pytest.raises(vdata.ValidationError):
            async with tx.transaction() as inner:
                await inner.fetchrow(q("insert_note"), ("inner",))
                await inner.fetchrow(q("insert_note"), ("x" * 101,))  # check constraint
        # The savepoint rolled back only the inner work; the outer goes on.
        await tx.fetchrow(q("insert_note"), ("after",))
    bodies = [r["body"] for r in await db.fetch(q("list_notes"), ())]
    assert bodies == ["outer", "after"]


async def test_failed_statement_inside_transaction_translates_and_rolls_back(
    db: vdata.Database,
) -> None:
    with pytest.raises(vdata.ValidationError) as caught:
        async with db.transaction() as tx:
            await tx.fetchrow(q("insert_note"), ("ok",))
            await tx.fetchrow(q("insert_note"), ("y" * 101,))
    assert caught.value.constraint == "check_probe_notes_body_length"
    assert isinstance(caught.value.__cause__, asyncpg.CheckViolationError)
    assert await count_notes(db) == 0


async def test_statement_timeout_gives_query_timeout_error(app_dsn: str) -> None:
    settings = vdata.Settings.build(statement_timeout=0.2)
    async with await vdata.connect(app_dsn, settings=settings) as db:
        with pytest.raises(vdata.QueryTimeoutError) as caught:
            await db.fetchval(q("sleep"), (2,))
        assert caught.value.sqlstate == "57014"
        assert "probe.sleep" in str(caught.value)
        # The pool is still usable and the breaker did not count a timeout
        # of one statement as an outage.
        assert await db.fetchval(q("get_one"), ()) == 1
        assert db.breaker.state == "closed"


async def test_pool_exhaustion_gives_a_clear_unavailable_error(app_dsn: str) -> None:
    settings = vdata.Settings.build(pool_min_size=1, pool_max_size=1, acquire_timeout=0.2)
    async with await vdata.connect(app_dsn, settings=settings) as db:
        async with db.transaction():
            with pytest.raises(vdata.UnavailableError) as caught:
                await db.fetchval(q("get_one"), ())
        assert "acquire_timeout" in str(caught.value)
        # Back-pressure is not an outage: the breaker stays closed.
        assert db.breaker.state == "closed"
        assert await db.fetchval(q("get_one"), ()) == 1


async def test_repeated_acquire_timeouts_never_open_the_breaker(app_dsn: str) -> None:
    # Back-pressure reaches the breaker translated with its stage: as many
    # acquire timeouts as the threshold leave it closed, and the next call on
    # a free pool works.
    settings = vdata.Settings.build(
        pool_min_size=1, pool_max_size=1, acquire_timeout=0.1, breaker_failure_threshold=3
    )
    async with await vdata.connect(app_dsn, settings=settings) as db:
        async with db.transaction():
            for _ in range(4):
                with pytest.raises(vdata.UnavailableError) as caught:
                    await db.fetchval(q("get_one"), ())
                assert caught.value.reason == "acquire_timeout"
                assert "pool exhausted" in str(caught.value)
                assert not isinstance(caught.value, vdata.QueryTimeoutError)
        assert db.breaker.state == "closed"
        assert db.breaker.failures == 0
        assert await db.fetchval(q("get_one"), ()) == 1


async def test_run_in_transaction_retries_a_real_serialization_failure(
    db: vdata.Database,
) -> None:
    # Classic write skew: each transaction reads both balances, then takes
    # from its own account. Under SERIALIZABLE one of them must fail with
    # 40001; run_in_transaction re-runs it and both units of work complete.
    both_read = asyncio.Barrier(2)
    attempts: dict[str, int] = {"a": 0, "b": 0}

    async def withdraw(account: str) -> None:
        async def work(tx: vdata.Transaction) -> None:
            attempts[account] += 1
            total = int(str(await tx.fetchval(q("sum_balances"), ())))
            if attempts[account] == 1:
                await both_read.wait()
            if total >= 150:
                await tx.execute(q("withdraw"), args("withdraw", account=account, amount=100))

        await db.run_in_transaction(work, retries=5)

    await asyncio.gather(withdraw("a"), withdraw("b"))
    assert sorted(attempts.values()) == [1, 2]  # exactly one re-run
    total = int(str(await db.fetchval(q("sum_balances"), ())))
    assert total == 100  # one withdrawal happened, then the rule held
    assert db.counters.retries >= 1


async def test_run_in_transaction_does_not_retry_business_errors(db: vdata.Database) -> None:
    calls = 0

    async def work(tx: vdata.Transaction) -> None:
        nonlocal calls
        calls += 1
        await tx.fetchrow(q("insert_note"), ("z" * 101,))

    with pytest.raises(vdata.ValidationError):
        await db.run_in_transaction(work, retries=5)
    assert calls == 1


async def test_slow_queries_are_logged_by_name_without_parameters(
    app_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = vdata.Settings.build(slow_query_threshold=0.0)
    async with await vdata.connect(app_dsn, settings=settings) as db:
        with caplog.at_level(logging.WARNING, logger="vdata.query"):
            await db.fetchrow(q("insert_note"), ("s3cret-body",))
    messages = [r.getMessage() for r in caplog.records if r.name == "vdata.query"]
    assert any("probe.insert_note" in m for m in messages)
    assert all("s3cret-body" not in m for m in messages)


async def test_health_reports_pool_breaker_and_counters(db: vdata.Database) -> None:
    await db.fetchval(q("get_one"), ())
    report = await db.health()
    assert report.ok and report.error is None
    assert report.latency_ms is not None and report.latency_ms > 0
    assert report.server_version and report.server_version[0].isdigit()
    assert report.pool.max_size == 4 and report.pool.size >= 1
    assert report.pool.in_use == 0
    assert report.breaker.state == "closed"
    assert report.queries >= 1


async def test_close_waits_for_calls_in_flight(app_dsn: str) -> None:
    db = await vdata.connect(app_dsn, settings=vdata.Settings.build(pool_max_size=3))
    calls = [asyncio.create_task(db.fetchval(q("sleep"), (0.3,))) for _ in range(3)]
    await asyncio.sleep(0.05)
    await db.close(timeout=5)
    assert [c.result() for c in calls] == ["slept"] * 3
    with pytest.raises(vdata.UnavailableError):
        await db.fetchval(q("get_one"), ())


async def test_close_terminates_calls_that_outlive_the_timeout(app_dsn: str) -> None:
    db = await vdata.connect(app_dsn, settings=vdata.Settings.build(retry_tries=1))
    call = asyncio.create_task(db.fetchval(q("sleep"), (5,)))
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await db.close(timeout=0.2)
    with pytest.raises(vdata.VdataError):
        await call
    assert loop.time() - started < 2


async def _backends(owner_dsn: str, application_name: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(owner_dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT pid, state, query, wait_event FROM pg_stat_activity"
            " WHERE application_name = $1",
            application_name,
        )
    finally:
        await conn.close()
    return rows


async def test_cancelled_calls_leave_the_pool_whole(vdata_dsn: str, app_dsn: str) -> None:
    # Thousands of calls cancelled at random points by asyncio timeouts:
    # afterwards no connection is leaked, none is left inside a transaction.
    name = "vdata-cancel-test"
    settings = vdata.Settings.build(pool_max_size=5, application_name=name)
    rng = random.Random(7)
    async with await vdata.connect(app_dsn, settings=settings) as db:

        async def one() -> None:
            try:
                async with asyncio.timeout(rng.uniform(0, 0.004)):
                    if rng.random() < 0.5:
                        await db.fetchval(q("sleep"), (rng.uniform(0, 0.003),))
                    else:
                        async with db.transaction() as tx:
                            await tx.fetchrow(q("insert_note"), ("c",))
                            await tx.fetchval(q("sleep"), (rng.uniform(0, 0.003),))
            except (TimeoutError, vdata.VdataError):
                pass

        for _ in range(10):
            await asyncio.gather(*(one() for _ in range(200)))
        # A cancelled statement may still be finishing on the server (its
        # cancel request in flight): wait, bounded, until every backend idles.
        for _ in range(100):
            backends = await _backends(vdata_dsn, name)
            if all(b["state"] == "idle" for b in backends):
                break
            await asyncio.sleep(0.05)
        assert all(b["state"] == "idle" for b in backends), backends
        pool = db._pool
        assert pool.get_size() <= 5
        assert pool.get_idle_size() == pool.get_size()
        assert await db.fetchval(q("get_one"), ()) == 1


async def test_reads_survive_every_backend_being_terminated(vdata_dsn: str, app_dsn: str) -> None:
    name = "vdata-terminate-test"
    settings = vdata.Settings.build(
        pool_max_size=4, application_name=name, retry_tries=5, breaker_failure_threshold=50
    )
    async with await vdata.connect(app_dsn, settings=settings) as db:
        stop = asyncio.Event()
        results: list[Any] = []

        async def reader() -> None:
            while not stop.is_set():
                results.append(await db.fetchval(q("get_one"), ()))

        async def killer() -> None:
            owner = await asyncpg.connect(vdata_dsn)
            try:
                for _ in range(5):
                    await asyncio.sleep(0.05)
                    await owner.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = $1",
                        name,
                    )
            finally:
                await owner.close()
                stop.set()

        await asyncio.gather(killer(), *(reader() for _ in range(8)))
        assert len(results) > 50 and set(results) == {1}
        assert db.counters.retries > 0


@pytest.mark.parametrize("method", ["fetch", "fetchval", "execute", "fetchrow"])
async def test_every_transaction_call_translates_server_errors(
    db: vdata.Database, method: str
) -> None:
    async with db.transaction() as tx:
        with pytest.raises(vdata.ValidationError) as caught:
            async with tx.transaction() as savepoint:
                await getattr(savepoint, method)(q("insert_note"), ("w" * 101,))
        assert caught.value.query == "probe.insert_note"
        assert caught.value.constraint == "check_probe_notes_body_length"
    assert db.counters.failures["ValidationError"] == 1
    assert await count_notes(db) == 0


async def test_copy_records_writes_rows_and_translates_errors(db: vdata.Database) -> None:
    async with db.transaction() as tx:
        written = await tx.copy_records(
            "notes", schema="probe", columns=["body"], records=[("a",), ("b",), ("c",)]
        )
    assert written == 3
    with pytest.raises(vdata.ValidationError):
        async with db.transaction() as tx:
            await tx.copy_records(
                "notes", schema="probe", columns=["body"], records=[("ok",), ("v" * 101,)]
            )
    assert await count_notes(db) == 3  # the failed COPY wrote nothing


async def test_cursor_streams_rows_inside_a_transaction(db: vdata.Database) -> None:
    async with db.transaction() as tx:
        await tx.copy_records(
            "notes", schema="probe", columns=["body"], records=[(str(i),) for i in range(250)]
        )
        bodies = [row["body"] async for row in tx.cursor(q("list_notes"), (), prefetch=100)]
    assert bodies == [str(i) for i in range(250)]


async def test_read_only_transaction_refuses_writes(db: vdata.Database) -> None:
    with pytest.raises(vdata.DatabaseError) as caught:
        async with db.transaction(readonly=True) as tx:
            await tx.fetchrow(q("insert_note"), ("nope",))
    assert caught.value.sqlstate == "25006"
    assert await count_notes(db) == 0
