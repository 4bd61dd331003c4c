"""Read replicas and failover on real clusters: a primary and a streaming standby.

The standby is a ``pg_basebackup -X stream`` copy of the primary, both on
loopback, started by tests/_replication.py. Each test is bounded in time and
prints its figures (the run's summary, "vdata drills: figures");
docs/scaling.md reports them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import vdata
from tests._replication import Cluster, binaries_missing, install_app
from tests.drills._load import GUARD, Load, until
from tests.integration._probe import QUERIES, q
from vdata.engine.replicas import Replica

_missing = binaries_missing()
pytestmark = [
    pytest.mark.drill,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
]

Figure = Callable[[str], None]
SCHEMA = (Path(__file__).resolve().parent.parent / "fixtures" / "probe-schema.sql").read_text()

# Declared lag-tolerant, as a repository declares a listing: may go to a replica.
TOLERANT_COUNT = QUERIES.bind("probe.count_notes", int, lag_tolerant=True)
TOLERANT_WHERE = QUERIES.bind("probe.in_recovery", bool, lag_tolerant=True)
WHERE = q("in_recovery")  # the same statement, not declared: stays on the primary


def settings(**overrides: Any) -> vdata.Settings:
    values: dict[str, Any] = {"replica_check_interval": 0.1, "pool_max_size": 8}
    values.update(overrides)
    return vdata.Settings.build(**values)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """A primary and one asynchronous streaming standby with the probe schema."""
    c = Cluster.start()
    try:
        await install_app(c.primary.dsn(), SCHEMA)
        c.add_standby("standby1")
        await c.wait_streaming(["standby1"])
        yield c
    finally:
        c.stop()


async def replica_db(c: Cluster, **overrides: Any) -> vdata.Database:
    db = await vdata.connect(
        c.dsn(c.primary),
        settings=settings(replica_dsns=[c.dsn(s) for s in c.standbys.values()], **overrides),
    )
    assert db.replicas is not None
    await db.replicas.wait_checked(10)
    await until(lambda: db.replicas is not None and db.replicas.replicas[0].state == "ok", 10)
    return db


async def test_routing_replica_reads_and_primary_transactions(cluster: Cluster) -> None:
    db = await replica_db(cluster)
    events: list[vdata.StatementEvent] = []
    db.add_statement_listener(events.append)
    try:
        assert await db.fetchval(TOLERANT_WHERE, ()) is True  # declared: on the replica
        # a replica read is a statement event like any other
        assert [(e.query, e.outcome) for e in events] == [("probe.in_recovery", "ok")]
        assert await db.fetchval(WHERE, ()) is False  # not declared: on the primary
        with db.reads("tolerant"):
            assert await db.fetchval(WHERE, ()) is True  # the caller allows lag
        with db.reads("fresh"):
            assert await db.fetchval(TOLERANT_WHERE, ()) is False  # the caller needs fresh
        async with db.transaction(actor="t") as tx:
            with db.reads("tolerant"):
                assert await tx.fetchval(TOLERANT_WHERE, ()) is False  # never a replica
            await tx.fetchrow(q("insert_note"), ("in-tx",))
        # writes never go to a replica, even when the caller allows lag
        with db.reads("tolerant"):
            row = await db.fetchrow(q("insert_note"), ("pool",))
            assert row is not None and row["body"] == "pool"
        health = await db.health()
        assert [r.state for r in health.replicas] == ["ok"]
        assert health.replicas[0].reads >= 2
        assert health.replicas[0].breaker.state == "closed"
        assert health.replicas[0].lag_seconds is not None
    finally:
        await db.close()


def ok_now(replica: Replica) -> Callable[[], bool]:
    return lambda: replica.state == "ok"


async def test_read_your_writes_under_a_delayed_replica(cluster: Cluster, figure: Figure) -> None:
    # A second standby applies WAL 1.5 s late. After a write, this Database's
    # lag-tolerant reads must see it; another Database that wrote nothing
    # reads the replica and sees the older state (the delay is real).
    delayed = cluster.add_standby("delayed", apply_delay_ms=1500)
    await cluster.wait_streaming(["delayed"])
    only_delayed = {"replica_dsns": [cluster.dsn(delayed)], "replica_max_lag": 30.0}
    writer = await vdata.connect(cluster.dsn(cluster.primary), settings=settings(**only_delayed))
    reader = await vdata.connect(cluster.dsn(cluster.primary), settings=settings(**only_delayed))
    try:
        for db in (writer, reader):
            assert db.replicas is not None
            await until(ok_now(db.replicas.replicas[0]), 15)
        stale_seen = 0
        for i in range(5):
            await writer.fetchrow(q("insert_note"), (f"ryw-{i}",))
            assert await writer.fetchval(TOLERANT_COUNT, ()) == i + 1  # its own write
            seen = await reader.fetchval(TOLERANT_COUNT, ())
            stale_seen += (
                isinstance(seen, int) and seen <= i
            )  # the replica's view: before the write
        # Once the replica has caught up, the writer's reads go there again.
        assert writer.replicas is not None
        before = writer.replicas.replicas[0].reads
        started = time.monotonic()
        while writer.replicas.replicas[0].reads == before and time.monotonic() - started < 15:
            assert await writer.fetchval(TOLERANT_COUNT, ()) == 5
            await asyncio.sleep(0.05)
        back_after = time.monotonic() - started
        assert writer.replicas.replicas[0].reads > before
        figure(
            f"replica 1.5 s behind: 5/5 of the writer's reads saw its write; the other "
            f"Database read the older state {stale_seen}/5 times; the writer's reads went "
            f"back to the replica {back_after:.2f} s after its last write"
        )
        assert stale_seen >= 3
    finally:
        await writer.close()
        await reader.close()


async def test_replica_stopped_mid_load(cluster: Cluster, figure: Figure) -> None:
    # Readers on a Database of their own (its reads are not held on the
    # primary by read-your-writes), writers on the primary.
    db = await replica_db(cluster, retry_tries=1)
    writes_db = await vdata.connect(cluster.dsn(cluster.primary), settings=settings())
    assert db.replicas is not None
    replica = db.replicas.replicas[0]
    stop = asyncio.Event()
    reads, errors = Counter[str](), Counter[str]()
    writes = 0

    async def reader() -> None:
        while not stop.is_set():
            try:
                await db.fetchval(TOLERANT_COUNT, ())
                reads["ok"] += 1
            except vdata.VdataError as error:
                errors[f"{type(error).__name__}({error.reason})"] += 1
            await asyncio.sleep(0)

    async def writer(w: int) -> None:
        nonlocal writes
        n = 0
        while not stop.is_set():
            n += 1
            await writes_db.fetchrow(q("insert_note"), (f"s{w}-{n}",))  # raises: fails the test
            writes += 1
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(reader()) for _ in range(6)]
    tasks += [asyncio.create_task(writer(w)) for w in range(2)]
    try:
        async with asyncio.timeout(GUARD):
            await asyncio.sleep(1.0)
            on_replica_before = replica.reads
            stopped_at = time.monotonic()
            cluster.standbys["standby1"].stop_server("immediate")
            await until(lambda: replica.state == "down", 10)
            noticed = time.monotonic() - stopped_at
            reads_at_stop = reads["ok"]
            await asyncio.sleep(1.0)
            reads_after = reads["ok"] - reads_at_stop
            health = await db.health()
            # Started again: the monitor sees it, and reads go back to it.
            cluster.standbys["standby1"].start_server()
            back_from = time.monotonic()
            on_replica_stopped = replica.reads
            await until(lambda: replica.reads > on_replica_stopped, 20)
            back_after = time.monotonic() - back_from
            stop.set()
            await asyncio.gather(*tasks)
        figure(
            f"replica stopped (immediate): monitor saw it down after {noticed:.2f} s; "
            f"{on_replica_before} reads on the replica before; {reads_after} reads in the "
            f"second after (primary); reader errors {dict(errors)}; writes ok {writes}; "
            f"replica fallbacks {replica.fallbacks}; replica breaker "
            f"{health.replicas[0].breaker.state}; primary breaker {health.breaker.state}; "
            f"restarted, reads on the replica again after {back_after:.2f} s"
        )
        assert on_replica_before > 0
        assert not errors, errors
        assert reads_after > 0
        assert health.ok and health.breaker.state == "closed"
        assert health.replicas[0].state == "down"
        assert replica.reads > on_replica_stopped
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await db.close()
        await writes_db.close()


async def _throughput(db: vdata.Database, seconds: float, tasks: int) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def one() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await db.fetch(TOLERANT_NOTES, ())
            done += 1

    await asyncio.gather(*(one() for _ in range(tasks)))
    return done / seconds


class Note(msgspec.Struct, frozen=True):
    id: int
    body: str


TOLERANT_NOTES = QUERIES.bind("probe.list_notes", Note, lag_tolerant=True)


async def test_replica_read_throughput_against_primary_only(
    cluster: Cluster, figure: Figure
) -> None:
    # Same machine, same load, interleaved rounds: reads split over primary
    # and replica (one Database with the replica) against one primary alone.
    owner = cluster.primary.dsn()
    seed = await vdata.connect(owner, settings=settings())
    try:
        for i in range(200):
            await seed.fetchrow(q("insert_note"), (f"seed-{i}",))
    finally:
        await seed.close()
    with_replica = await replica_db(cluster)
    primary_only = await vdata.connect(cluster.dsn(cluster.primary), settings=settings())
    rates: dict[str, list[float]] = {"primary only": [], "with replica": []}
    try:
        await until(lambda: with_replica.replicas.replicas[0].state == "ok", 10)  # type: ignore[union-attr]
        for _ in range(3):
            rates["primary only"].append(await _throughput(primary_only, 1.0, 16))
            rates["with replica"].append(await _throughput(with_replica, 1.0, 16))
        assert with_replica.replicas is not None
        on_replica = with_replica.replicas.replicas[0].reads
    finally:
        await with_replica.close()
        await primary_only.close()
    best = {k: max(v) for k, v in rates.items()}
    figure(
        f"200-row reads, 16 tasks, 3 interleaved rounds of 1 s: primary only "
        f"{[round(r) for r in rates['primary only']]}/s, with one replica "
        f"{[round(r) for r in rates['with replica']]}/s; best-of ratio "
        f"{best['with replica'] / best['primary only']:.2f}; reads served by the replica "
        f"{on_replica} (all servers on one 2-core machine)"
    )
    assert on_replica > 0


# -- failover ------------------------------------------------------------------------


async def test_multi_host_dsn_picks_the_host_of_the_asked_kind(cluster: Cluster) -> None:
    p, s = cluster.primary, cluster.standbys["standby1"]
    hosts = f"{s.host}:{s.port},{p.host}:{p.port}"  # the standby first

    async def answer(attrs: str) -> object:
        dsn = f"postgresql://vdata_app@{hosts}/postgres?target_session_attrs={attrs}"
        async with await vdata.connect(dsn, settings=settings()) as db:
            return await db.fetchval(WHERE, ())

    assert await answer("read-write") is False  # skipped the standby: the primary answered
    assert await answer("primary") is False
    assert await answer("standby") is True
    assert await answer("any") is True  # the first host that answers
    only_standby = f"postgresql://vdata_app@{s.host}:{s.port}/postgres"
    with pytest.raises(vdata.UnavailableError) as none:
        await vdata.connect(only_standby + "?target_session_attrs=read-write", settings=settings())
    assert none.value.reason == "no_matching_host"
    assert "target_session_attrs=read-write" in str(none.value)


class TimedSet(set[str]):
    """The ledger's set of acknowledged units, noting when each was added."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def add(self, unit: str) -> None:
        self.times.append(time.monotonic())
        super().add(unit)


@pytest.fixture
async def sync_cluster() -> AsyncIterator[Cluster]:
    """A primary with a synchronous standby (no acknowledged commit can be lost)."""
    c = Cluster.start(sync=True)
    try:
        # The standby first: until it streams, every commit on the primary waits for it.
        c.add_standby("standby1")
        await c.wait_streaming(["standby1"])
        await install_app(c.primary.dsn(), SCHEMA)
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize("promote_after", [0.0, 1.0])
async def test_failover_kill_primary_promote_standby(
    sync_cluster: Cluster, figure: Figure, promote_after: float
) -> None:
    # DEFAULT settings, a multi-host read-write DSN, 8 writers and 4 readers;
    # the standby is promoted at once, or a second after the old primary is gone.
    c = sync_cluster
    db = await vdata.connect(c.failover_dsn("standby1"), settings=vdata.Settings.build())
    load = Load(db, readers=4, writers=8)
    acked = load.ledger.acked = TimedSet()  # before the first write: tasks have not run yet
    acked_at = acked.times
    try:
        async with asyncio.timeout(GUARD):
            await asyncio.sleep(1.0)
            acked_before = len(load.ledger.acked)
            killed_at = c.kill_primary()
            await until(lambda: not c.primary_children(), 5)
            gone_at = time.monotonic()
            await asyncio.sleep(promote_after)
            c.promote("standby1")
            promoted_at = time.monotonic()
            await until(lambda: any(t > promoted_at for t in acked_at), 20)
            await asyncio.sleep(0.5)
            # Acknowledged once every process of the old primary was gone: by the new one.
            first_write = min((t for t in acked_at if t > gone_at + 0.01), default=None)
            await asyncio.sleep(1.0)
            await load.finish()
        ledger = await load.ledger.check(c.standbys["standby1"].dsn())
        health = await db.health()
        figure(
            f"kill -9 of the primary, children gone after {gone_at - killed_at:.2f} s, "
            f"standby promoted after {promoted_at - killed_at:.2f} s; first successful write "
            f"{(first_write - killed_at) if first_write else float('nan'):.2f} s after the "
            f"kill; acknowledged before the kill {acked_before}; writer errors "
            f"{dict(load.ledger.errors)}; reader errors {dict(load.read_errors)}; "
            f"breaker opened {health.breaker.times_opened} times, now {health.breaker.state}; "
            f"ledger {ledger}"
        )
        assert first_write is not None
        assert first_write - killed_at <= 5.0
        assert ledger["lost"] == 0 and ledger["duplicated"] == 0 and ledger["half"] == 0
        assert health.ok
    finally:
        load.stop.set()
        await db.close()
