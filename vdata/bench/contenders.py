"""The contenders: vdata on the pool and in a transaction, raw asyncpg two ways.

SQLAlchemy is in ``vdata.bench.orm`` (``suite.make`` imports it only when it runs, so
SQLAlchemy stays an optional ``bench`` extra). Each contender opens its
connections for one mode (a pool of 1 for latency, of 10 for throughput) and
returns, per operation, a batch function ``run(worker, n)``.

- ``vdata pool``: ``db.users.get(...)`` etc., one pooled call each.
- ``vdata tx``: ``tx.users.get(...)``, a batch of calls in one transaction
  (10 calls in latency mode, 2 per task in throughput mode).
- ``asyncpg pool``: asyncpg's pool with default settings, ``acquire()`` per call,
  the same SQL text as vdata.
- ``asyncpg tuned``: held connections (one for latency, ten for throughput,
  handed out per batch), statements prepared once, Records returned, a batch
  in one transaction: the raw counterpart of ``vdata tx``.

Transactions: ``vdata tx`` and ``asyncpg tuned`` commit once per batch; the
other contenders autocommit each call. For API-key verify, the pooled
contenders run the read (``get_usable_api_key``, vdata counts uses in
batches) and the transaction contenders ``use_api_key`` (an UPDATE), as
vdata does on each executor.
"""

from __future__ import annotations

__all__ = ["CONTENDERS", "Contender", "RawPool", "RawTuned", "VdataPool", "VdataTx"]

import asyncio
from typing import Any

import asyncpg

import vdata
from vdata.bench.calls import SQL, raw_op, vdata_op
from vdata.bench.operations import ACTOR, Workload, cheap_settings
from vdata.bench.runner import BatchFn
from vdata.queries import load

CONTENDERS = ("vdata pool", "vdata tx", "asyncpg pool", "asyncpg tuned", "sqlalchemy")


class Contender:
    """One way of running the operations; ``open`` for a mode, ``batch`` per op."""

    name = ""

    def __init__(self, w: Workload) -> None:
        self.w = w

    async def open(self, pool_size: int) -> None:
        """Open a pool (or a held connection) of *pool_size* connections."""
        raise NotImplementedError

    def batch(self, op: str) -> BatchFn:
        """Return ``run(worker, n)`` for *op*."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close every connection."""
        raise NotImplementedError


class VdataPool(Contender):
    """``db.<area>.<method>``: the pooled executor."""

    name = "vdata pool"

    async def open(self, pool_size: int) -> None:
        settings = cheap_settings(pool_min_size=pool_size, pool_max_size=pool_size)
        self.db = await vdata.connect(self.w.app_dsn, settings=settings)

    def batch(self, op: str) -> BatchFn:
        f, db = vdata_op(op, self.w), self.db

        async def run(worker: int, n: int) -> None:
            for _ in range(n):
                await f(db, worker)

        return run

    async def close(self) -> None:
        await self.db.close()


class VdataTx(VdataPool):
    """``tx.<area>.<method>``: a batch of calls in one ``db.transaction()``."""

    name = "vdata tx"

    def batch(self, op: str) -> BatchFn:
        f, db = vdata_op(op, self.w), self.db

        async def run(worker: int, n: int) -> None:
            async with db.transaction(actor=ACTOR) as tx:
                for _ in range(n):
                    await f(tx, worker)

        return run


class RawPool(Contender):
    """asyncpg's pool with default settings; ``async with pool.acquire()`` per call."""

    name = "asyncpg pool"

    async def open(self, pool_size: int) -> None:
        self.pool = await asyncpg.create_pool(
            self.w.app_dsn, min_size=pool_size, max_size=pool_size
        )

    def batch(self, op: str) -> BatchFn:
        f, pool = raw_op(op, self.w, tuned=False), self.pool

        async def run(worker: int, n: int) -> None:
            for _ in range(n):
                async with pool.acquire() as conn:
                    await f(conn, worker)

        return run

    async def close(self) -> None:
        await self.pool.close()


class RawTuned(Contender):
    """Held connections, statements prepared once, Records, one transaction per batch.

    No pool: asyncpg invalidates prepared statements when a pooled connection
    is released, so the tuned contender holds its connections (one in latency
    mode, ten in throughput mode) and hands them out through a queue.
    """

    name = "asyncpg tuned"

    async def open(self, pool_size: int) -> None:
        queries = load()
        self.conns: list[asyncpg.Connection] = []
        self.free: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for _ in range(pool_size):
            conn = await asyncpg.connect(self.w.app_dsn)
            self.conns.append(conn)
            found: dict[str, Any] = {"conn": conn}
            for key, name in SQL.items():
                found[key] = await conn.prepare(queries[name].sql)
            self.free.put_nowait(found)

    def batch(self, op: str) -> BatchFn:
        f, free = raw_op(op, self.w, tuned=True), self.free

        async def run(worker: int, n: int) -> None:
            s = await free.get()
            try:
                async with s["conn"].transaction():
                    for _ in range(n):
                        await f(s, worker)
            finally:
                free.put_nowait(s)

        return run

    async def close(self) -> None:
        for conn in self.conns:
            await conn.close()
