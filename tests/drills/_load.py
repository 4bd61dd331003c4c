"""The load of a drill: readers, writers with a ledger of acknowledged writes, checks."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

import vdata
from tests.integration._probe import q

# Every drill stops by itself: a hang fails it instead of stalling CI.
GUARD = 60.0


@dataclass
class Ledger:
    """What writers were told: each unit of work inserts two notes in one transaction."""

    acked: set[str] = field(default_factory=set)
    unacked: set[str] = field(default_factory=set)  # failed: may or may not have committed
    errors: Counter[str] = field(default_factory=Counter)
    not_sent_false: int = 0

    async def check(self, owner_dsn: str) -> dict[str, int]:
        """Acknowledged units are stored once; no unit is stored twice or by half."""
        conn = await asyncpg.connect(owner_dsn)
        try:
            rows = await conn.fetch("SELECT body FROM probe.notes WHERE body LIKE 'w%'")
        finally:
            await conn.close()
        stored = Counter(r["body"] for r in rows)
        duplicated = [body for body, n in stored.items() if n > 1]
        units = {body[:-2] for body in stored}
        half = [u for u in units if stored[f"{u}-a"] != stored[f"{u}-b"]]
        lost = [u for u in self.acked if stored[f"{u}-a"] != 1]
        committed_unacked = sum(1 for u in self.unacked if stored[f"{u}-a"] == 1)
        assert not duplicated, duplicated[:5]
        assert not half, half[:5]
        assert not lost, lost[:5]
        return {
            "acked": len(self.acked),
            "unacked": len(self.unacked),
            "unacked_but_committed": committed_unacked,
            "lost": len(lost),
            "duplicated": len(duplicated),
            "half": len(half),
        }


class Load:
    """Readers and writers on one Database until ``stop`` is set."""

    def __init__(self, db: vdata.Database, *, readers: int, writers: int, pause: float = 0.0):
        self.db = db
        self.stop = asyncio.Event()
        self.ledger = Ledger()
        self.reads = 0
        self.read_errors: Counter[str] = Counter()
        self.last_ok = 0.0
        self._pause = pause
        self._tasks = [asyncio.create_task(self._reader()) for _ in range(readers)]
        self._tasks += [asyncio.create_task(self._writer(w)) for w in range(writers)]

    async def _reader(self) -> None:
        while not self.stop.is_set():
            try:
                assert await self.db.fetchval(q("get_one"), ()) == 1
                self.reads += 1
                self.last_ok = time.monotonic()
            except vdata.VdataError as error:
                self.read_errors[f"{type(error).__name__}({error.reason or error.sqlstate})"] += 1
                await asyncio.sleep(0.005)  # a service would back off too
            await asyncio.sleep(self._pause)

    async def _writer(self, writer: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            unit = f"w{writer}-{n}"
            try:
                async with self.db.transaction(actor="drill") as tx:
                    await tx.fetchrow(q("insert_note"), (f"{unit}-a",))
                    await tx.fetchrow(q("insert_note"), (f"{unit}-b",))
            except vdata.VdataError as error:
                self.ledger.unacked.add(unit)
                self.ledger.errors[f"{type(error).__name__}({error.reason or error.sqlstate})"] += 1
                self.ledger.not_sent_false += not error.not_sent
                await asyncio.sleep(0.005)
                continue
            self.ledger.acked.add(unit)
            await asyncio.sleep(self._pause)

    async def finish(self) -> None:
        self.stop.set()
        async with asyncio.timeout(GUARD):
            await asyncio.gather(*self._tasks)


async def app_backends(owner_dsn: str) -> list[asyncpg.Record]:
    """The service role's backends on this database: pid and state."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        return list(
            await conn.fetch(
                "SELECT pid, state FROM pg_stat_activity"
                " WHERE usename = 'vdata_app' AND datname = current_database()"
            )
        )
    finally:
        await conn.close()


async def terminate_all(owner_dsn: str) -> int:
    """pg_terminate_backend every backend of the service role; return how many."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        killed = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE usename = 'vdata_app' AND datname = current_database()"
        )
    finally:
        await conn.close()
    return int(killed)


async def assert_pool_whole(db: vdata.Database, owner_dsn: str) -> None:
    """Nothing in use or left in a transaction; pool and server agree on the count."""
    async with asyncio.timeout(10):
        while True:
            health = await db.health()
            backends = await app_backends(owner_dsn)
            states = Counter(str(b["state"]) for b in backends)
            if (
                health.ok
                and health.pool.in_use == 0
                and len(backends) == health.pool.size
                and not any(s.startswith("idle in transaction") for s in states)
            ):
                return
            await asyncio.sleep(0.05)


async def until(predicate: Callable[[], bool], limit: float) -> None:
    """Poll *predicate* every 5 ms until it holds or *limit* seconds passed."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.005)


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
