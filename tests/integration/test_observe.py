"""Statement listeners and QueryStats on a real PostgreSQL: names, outcomes, timings, no values."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

import vdata
from tests.integration._probe import q

pytestmark = pytest.mark.integration

SECRET = "s3cret-param-value-7f3a"


class Recorder:
    """A listener that keeps every event."""

    def __init__(self) -> None:
        self.events: list[vdata.StatementEvent] = []

    def __call__(self, event: vdata.StatementEvent) -> None:
        self.events.append(event)

    def outcomes(self) -> list[tuple[str, str, bool, str | None]]:
        return [(e.query, e.outcome, e.in_transaction, e.error) for e in self.events]


@pytest.fixture
async def db(app_dsn: str) -> AsyncIterator[vdata.Database]:
    settings = vdata.Settings.build(pool_min_size=1, pool_max_size=1, application_name="obs-test")
    async with await vdata.connect(app_dsn, settings=settings) as database:
        yield database


async def read_while_terminated(db: vdata.Database, owner_dsn: str, pid: object) -> None:
    """Run a 0.3 s read on the pool's one connection; terminate its backend mid-statement."""
    read = asyncio.ensure_future(db.fetchval(q("sleep"), (0.3,)))
    await asyncio.sleep(0.1)
    admin = await asyncpg.connect(owner_dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await read


def assert_no_secret(recorder: Recorder, stats: vdata.QueryStats) -> None:
    dumped = repr(recorder.events) + msgspec.json.encode(stats.snapshot()).decode()
    assert recorder.events and SECRET not in dumped


async def test_events_name_the_query_and_outcome_and_never_carry_values(
    db: vdata.Database,
) -> None:
    rec, stats = Recorder(), vdata.QueryStats()
    db.add_statement_listener(rec)
    db.add_statement_listener(stats)
    await db.fetchrow(q("insert_note"), (SECRET,))
    with pytest.raises(vdata.ValidationError):
        await db.fetchrow(q("insert_note"), (SECRET * 10,))  # over the 100-char check
    async with db.transaction() as tx:
        assert await tx.fetchval(q("get_one"), ()) == 1
        with pytest.raises(vdata.ValidationError):
            async with tx.transaction() as savepoint:
                await savepoint.execute(q("insert_note"), (SECRET * 10,))
    assert rec.outcomes() == [
        ("probe.insert_note", "ok", False, None),
        ("probe.insert_note", "error", False, "ValidationError"),
        ("probe.get_one", "ok", True, None),
        ("probe.insert_note", "error", True, "ValidationError"),
    ]
    assert [e.sqlstate for e in rec.events] == [None, "23514", None, "23514"]
    assert all(e.duration > 0 and e.pool_wait == 0.0 for e in rec.events)
    assert rec.events[0].sql == q("insert_note").sql and "$1" in rec.events[0].sql
    snap = stats.snapshot()
    assert sorted(snap) == ["probe.get_one", "probe.insert_note"]
    notes = snap["probe.insert_note"]
    assert (notes.calls, notes.ok, notes.errors, notes.retried, notes.refused) == (
        3,
        1,
        {"ValidationError": 2},
        0,
        0,
    )
    assert (notes.in_transaction, notes.measured) == (1, 3)
    assert notes.seconds_total == pytest.approx(
        sum(e.duration for e in rec.events if e.query == "probe.insert_note")
    )
    assert snap["probe.get_one"].in_transaction == 1
    assert_no_secret(rec, stats)


async def test_repository_calls_are_reported_under_their_query_name(
    db: vdata.Database,
) -> None:
    rec = Recorder()
    db.add_statement_listener(rec)
    await db.users.create(
        vdata.NewUser(username="obs", email="obs@example.org", password=SECRET), actor="t"
    )
    with pytest.raises(vdata.NotFoundError):
        await db.users.get(uuid.uuid4())
    names = [e.query for e in rec.events]
    assert "users.insert_user" in names
    # NotFoundError is the repository's verdict: the statement itself was ok.
    assert rec.outcomes()[-1] == ("users.get_user_by_id", "ok", False, None)
    assert SECRET not in repr(rec.events)


async def test_a_retried_read_reports_the_failed_attempt_then_the_good_one(
    db: vdata.Database, vdata_dsn: str
) -> None:
    rec, stats = Recorder(), vdata.QueryStats()
    pid = await db.fetchval(q("backend_pid"), ())
    db.add_statement_listener(rec)
    db.add_statement_listener(stats)
    await read_while_terminated(db, vdata_dsn, pid)
    [(name, first, _, error), (_, second, _, _)] = rec.outcomes()
    assert (name, first, second) == ("probe.sleep", "retried", "ok")
    assert error is not None
    assert db.counters.retries == 1
    snap = stats.snapshot()["probe.sleep"]
    assert (snap.calls, snap.ok, snap.retried, snap.errors) == (2, 1, 1, {})


async def test_with_no_retry_left_the_failed_attempt_is_an_error(
    app_dsn: str, vdata_dsn: str
) -> None:
    settings = vdata.Settings.build(pool_min_size=1, pool_max_size=1, retry_tries=1)
    async with await vdata.connect(app_dsn, settings=settings) as db:
        rec = Recorder()
        pid = await db.fetchval(q("backend_pid"), ())
        db.add_statement_listener(rec)
        with pytest.raises(vdata.VdataError) as caught:
            await read_while_terminated(db, vdata_dsn, pid)
        assert rec.outcomes() == [("probe.sleep", "error", False, type(caught.value).__name__)]
        assert db.counters.retries == 0


async def test_a_call_refused_by_the_open_breaker_is_reported_as_refused(
    app_dsn: str,
) -> None:
    settings = vdata.Settings.build(pool_max_size=1, breaker_failure_threshold=1)
    async with await vdata.connect(app_dsn, settings=settings) as db:
        rec, stats = Recorder(), vdata.QueryStats()
        db.add_statement_listener(rec)
        db.add_statement_listener(stats)
        db.breaker.before_call()
        db.breaker.on_failure(vdata.UnavailableError("refused", reason="connect_failed"))
        with pytest.raises(vdata.UnavailableError):
            await db.fetchval(q("get_one"), ())
        assert rec.outcomes() == [("probe.get_one", "refused", False, "UnavailableError")]
        assert rec.events[0].duration == 0.0
        snap = stats.snapshot()["probe.get_one"]
        assert (snap.calls, snap.refused, snap.measured) == (1, 1, 0)


async def test_the_wait_for_a_busy_pool_is_reported(db: vdata.Database) -> None:
    rec = Recorder()
    db.add_statement_listener(rec)
    async with db.transaction():  # holds the pool's only connection
        waiter = asyncio.ensure_future(db.fetchval(q("get_one"), ()))
        await asyncio.sleep(0.2)
        assert not waiter.done()
    assert await waiter == 1
    [event] = rec.events
    assert event.outcome == "ok" and event.pool_wait >= 0.15


async def test_a_failing_listener_is_logged_once_and_breaks_nothing(
    db: vdata.Database, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()

    def broken(event: vdata.StatementEvent) -> None:
        raise RuntimeError("listener bug")

    db.add_statement_listener(broken)
    db.add_statement_listener(rec)
    for _ in range(3):
        assert await db.fetchval(q("get_one"), ()) == 1
    assert len(rec.events) == 3
    assert [r.message for r in caplog.records].count(
        f"statement listener {broken!r} failed (logged once)"
    ) == 1


async def test_a_removed_listener_hears_nothing_more(db: vdata.Database) -> None:
    rec = Recorder()
    db.add_statement_listener(rec)
    await db.fetchval(q("get_one"), ())
    db.remove_statement_listener(rec)
    assert not db.observers.active
    await db.fetchval(q("get_one"), ())
    assert len(rec.events) == 1
    with pytest.raises(ValueError):
        db.remove_statement_listener(rec)
    with pytest.raises(TypeError):
        db.add_statement_listener("not callable")  # type: ignore[arg-type]


async def test_pool_health_reads_the_pool_without_a_round_trip(db: vdata.Database) -> None:
    before = db.pool_health()
    assert (before.size, before.max_size, before.in_use) == (1, 1, 0)
    async with db.transaction():
        assert db.pool_health().in_use == 1


async def test_exhausted_retries_report_each_attempt_and_the_last_as_an_error() -> None:
    with socket.socket() as s:  # a loopback port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = vdata.Settings.build(
        dsn=f"postgresql://nobody@127.0.0.1:{port}/none",
        pool_min_size=0,
        retry_tries=3,
        breaker_failure_threshold=10,
    )
    async with await vdata.connect(settings=settings) as db:
        rec, stats = Recorder(), vdata.QueryStats()
        db.add_statement_listener(rec)
        db.add_statement_listener(stats)
        with pytest.raises(vdata.UnavailableError) as caught:
            await db.fetchval(q("get_one"), ())
    assert caught.value.reason == "retries_exhausted"
    cause = type(caught.value.__cause__).__name__
    assert rec.outcomes() == [
        ("probe.get_one", "retried", False, cause),
        ("probe.get_one", "retried", False, cause),
        ("probe.get_one", "error", False, cause),
    ]
    # Nothing was sent: no statement time; the time went into connecting.
    assert all(e.duration == 0.0 and e.pool_wait > 0 for e in rec.events)
    snap = stats.snapshot()["probe.get_one"]
    assert (snap.calls, snap.retried, snap.errors) == (3, 2, {cause: 1})
