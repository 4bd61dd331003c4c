"""Measurements beside the operation table: authenticate, loop lag, streaming RSS, audit writes.

- ``authenticate``: one login with the default argon2id parameters, vdata vs
  raw asyncpg doing the same steps (credentials query, argon2 verify in a
  thread, ``record_login``); dominated by argon2 by design, so reported apart.
- ``loop_lag``: a ticker task asks to wake every millisecond while 32 logins
  hash at once; its lateness (p50/p99) is how long the event loop was blocked.
- ``stream_rss``: peak growth of this process's resident memory while
  ``db.audit.export()`` streams every audit row (seeded by ``seed_audit.sql``).
- ``audit_writes``: ``db.audit.record()`` per second with the audit chain on
  (a sealer running beside the writers) and off (``chain_off.sql``),
  interleaved and repeated, at one connection and at a pool under many tasks.
"""

from __future__ import annotations

__all__ = ["Extras", "audit_writes", "authenticate", "loop_lag", "stream_rss"]

import asyncio
import contextlib
import os
import statistics
import sys
import time
from typing import Any

import argon2
import asyncpg
import msgspec

import vdata
from vdata.bench.operations import (
    ACTOR,
    BENCH_SECRET,
    PASSWORD,
    Workload,
    cheap_settings,
    read_sql,
    seed_audit,
)
from vdata.bench.runner import Progress, measure, rotated
from vdata.models.users import NewUser
from vdata.queries import load


class Extras(msgspec.Struct, kw_only=True):
    """The extra measurements of one run (None: not run)."""

    authenticate: dict[str, Any] | None = None
    loop_lag: dict[str, Any] | None = None
    stream_rss: dict[str, Any] | None = None
    audit_writes: dict[str, Any] | None = None
    hooks: dict[str, Any] | None = None
    row_security: dict[str, Any] | None = None  # vdata.bench.row_security


def login_settings() -> vdata.Settings:
    """Default argon2id parameters, as a service would run them."""
    return vdata.Settings.build(secret_key=BENCH_SECRET, slow_query_threshold=60.0)


async def _login_user(db: vdata.Database, w: Workload) -> str:
    name = f"a{w.run}"
    await db.users.create(
        NewUser(username=name, email=f"{name}@example.org", password=PASSWORD), actor=ACTOR
    )
    return name


async def authenticate(
    w: Workload, *, calls: int, repeats: int, progress: Progress
) -> dict[str, Any]:
    """Time ``db.users.authenticate`` and its raw asyncpg equivalent, interleaved."""
    queries = load()
    creds, record = queries["users.get_user_credentials_by_login"], queries["users.record_login"]
    ph = argon2.PasswordHasher()  # argon2-cffi's default profile = vdata's default
    async with await vdata.connect(w.app_dsn, settings=login_settings()) as db:
        login = await _login_user(db, w)
        pool = await asyncpg.create_pool(w.app_dsn, min_size=1, max_size=1)
        try:

            async def vdata_login(_w: int, n: int) -> None:
                for _ in range(n):
                    await db.users.authenticate(login, PASSWORD)

            async def raw_login(_w: int, n: int) -> None:
                for _ in range(n):
                    async with pool.acquire() as conn:
                        row = await conn.fetchrow(creds.sql, login)
                        await asyncio.to_thread(ph.verify, row["password_hash"], PASSWORD)
                        args = record.arguments(
                            (),
                            {
                                "id": row["id"],
                                "password_hash": row["password_hash"],
                                "new_password_hash": None,
                                "ip": None,
                            },
                        )
                        if await conn.fetchrow(record.sql, *args) is None:
                            raise RuntimeError("record_login matched no row")

            runs = {"vdata pool": vdata_login, "asyncpg pool": raw_login}
            cells: dict[str, list[Any]] = {name: [] for name in runs}
            for r in range(repeats):
                for name in rotated(list(runs), r):
                    cell = await measure(
                        runs[name],
                        op="authenticate",
                        contender=name,
                        mode="latency",
                        repeat=r,
                        seconds=0.0,
                        batch=calls,
                    )
                    cells[name].append(cell)
                    progress.note(f"authenticate {name} {cell.us_per_op / 1000:.0f} ms")
        finally:
            await pool.close()
    return {
        name: {
            "ms_per_op": statistics.median(c.us_per_op / 1000 for c in found),
            "min_ms": min(c.us_per_op / 1000 for c in found),
            "max_ms": max(c.us_per_op / 1000 for c in found),
            "cpu_ms_per_op": statistics.median(c.cpu_us_per_op / 1000 for c in found),
        }
        for name, found in cells.items()
    }


async def _ticker(stop: asyncio.Event, lateness: list[float], interval: float = 0.001) -> None:
    clock = time.perf_counter
    while not stop.is_set():
        due = clock() + interval
        await asyncio.sleep(interval)
        lateness.append(max(0.0, clock() - due) * 1000)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values) or [0.0]

    def pick(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": ordered[-1]}


async def loop_lag(w: Workload, *, logins: int = 32) -> dict[str, Any]:
    """Return the ticker's lateness while idle and while *logins* logins hash at once."""
    async with await vdata.connect(w.app_dsn, settings=login_settings()) as db:
        login = f"a{w.run}"
        async with db._pool.connection() as conn:
            found = await conn.fetchval("SELECT 1 FROM app.users WHERE username = $1", login)
        if found is None:
            login = await _login_user(db, w)
        idle: list[float] = []
        stop = asyncio.Event()
        ticker = asyncio.create_task(_ticker(stop, idle))
        await asyncio.sleep(0.5)
        stop.set()
        await ticker
        busy: list[float] = []
        stop = asyncio.Event()
        ticker = asyncio.create_task(_ticker(stop, busy))
        started = time.perf_counter()
        await asyncio.gather(*(db.users.authenticate(login, PASSWORD) for _ in range(logins)))
        elapsed = time.perf_counter() - started
        stop.set()
        await ticker
    return {
        "logins": logins,
        "seconds": elapsed,
        "idle": _percentiles(idle),
        "busy": _percentiles(busy),
        "samples": len(busy),
    }


async def stream_rss(
    w: Workload, owner_dsn: str, *, rows: int, progress: Progress
) -> dict[str, Any]:
    """Seed *rows* audit rows, then stream every audit row in a fresh process (``stream.py``)."""
    owner = await asyncpg.connect(owner_dsn)
    try:
        started = time.perf_counter()
        await seed_audit(owner, rows=rows)
        seeded_s = time.perf_counter() - started
    finally:
        await owner.close()
    progress.note(f"stream: seeded {rows:,} audit rows in {seeded_s:.1f} s; streaming")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vdata.bench.stream",
        w.app_dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"streaming process failed ({proc.returncode}): {' / '.join(tail)}")
    found: dict[str, Any] = msgspec.json.decode(out)
    found["seeded_rows"] = rows
    found["seed_seconds"] = seeded_s
    return found


async def _sealer(db: vdata.Database, stop: asyncio.Event, every: float, out: list[int]) -> None:
    """Seal every *every* seconds until *stop*, then once more; append the rows sealed."""
    while True:
        stopped = stop.is_set()
        out.append((await db.audit.seal()).rows_sealed)
        if stopped:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def _server_cpu_s(pids: list[int]) -> float | None:
    """Return the CPU seconds the server processes *pids* used so far (None: not readable).

    Linux only, and only when the server runs on this machine (the bench's
    throwaway server does): user + system time from ``/proc/<pid>/stat``.
    """
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


async def _write_rate(
    w: Workload,
    owner: asyncpg.Connection,
    *,
    seconds: float,
    mode: str,
    size: int,
    tasks: int,
    seal_every: float | None,
) -> dict[str, Any]:
    settings = cheap_settings(pool_min_size=size, pool_max_size=size)
    async with (
        await vdata.connect(w.app_dsn, settings=settings) as db,
        await vdata.connect(
            w.app_dsn, settings=cheap_settings(pool_min_size=1, pool_max_size=1)
        ) as sealer_db,
    ):
        audit = db.audit

        async def run(_w: int, k: int, audit: Any = audit) -> None:
            for _ in range(k):
                await audit.record("bench.write", "bench", "x", actor=ACTOR)

        # Every backend of the writers' pool and of the sealer (both open).
        pids = [
            r["pid"]
            for r in await owner.fetch(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
            )
        ]
        server0 = _server_cpu_s(pids)
        sealed: list[int] = []
        stop = asyncio.Event()
        sealer = (
            None
            if seal_every is None
            else asyncio.create_task(_sealer(sealer_db, stop, seal_every, sealed))
        )
        try:
            cell = await measure(
                run,
                op="audit_write",
                contender="vdata pool",
                mode=mode,
                repeat=0,
                seconds=seconds,
                tasks=tasks,
            )
        finally:
            stop.set()
            if sealer is not None:
                await sealer
        server1 = _server_cpu_s(pids)
    server_us = (
        None
        if server0 is None or server1 is None or not cell.ops
        else (server1 - server0) / cell.ops * 1e6
    )
    return {
        "writes_per_s": cell.ops_per_s,
        "cpu_us_per_op": cell.cpu_us_per_op,
        "server_cpu_us_per_op": server_us,
        "writes": cell.ops,
        "rows_sealed": sum(sealed),
        "seals": sum(1 for n in sealed if n),
    }


def _median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def audit_writes(
    w: Workload,
    owner_dsn: str,
    *,
    seconds: float,
    tasks: int,
    pool: int,
    repeats: int = 3,
    seal_every: float = 1.0,
) -> dict[str, Any]:
    """Return ``db.audit.record()`` per second with the chain on and off, interleaved.

    Each repeat measures, for each mode (one connection; *tasks* tasks on a
    pool of *pool*), the chain on (a sealer seals every *seal_every* s on a
    connection of its own while the writers run, and once after, so its
    server work is counted) and off (``chain_off.sql``, as the owner: rows
    hashed, never sealed, no sealer), in an order rotated every repeat.
    ``ratio`` is on / off within each repeat.
    """
    modes = (("latency", 1, 1), ("throughput", pool, tasks))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        chain: {mode: [] for mode, _, _ in modes} for chain in ("on", "off")
    }
    ratios: dict[str, list[float]] = {mode: [] for mode, _, _ in modes}
    owner = await asyncpg.connect(owner_dsn)
    try:
        for r in range(repeats):
            for mode, size, n in modes:
                found: dict[str, dict[str, Any]] = {}
                for chain in rotated(["on", "off"], r):
                    if chain == "off":
                        await owner.execute(read_sql("chain_off.sql"))
                    try:
                        found[chain] = await _write_rate(
                            w,
                            owner,
                            seconds=seconds,
                            mode=mode,
                            size=size,
                            tasks=n,
                            seal_every=seal_every if chain == "on" else None,
                        )
                    finally:
                        if chain == "off":
                            await owner.execute(read_sql("chain_on.sql"))
                    runs[chain][mode].append(found[chain])
                ratios[mode].append(found["on"]["writes_per_s"] / found["off"]["writes_per_s"])
    finally:
        await owner.close()
    out: dict[str, Any] = {
        chain: {
            mode: {
                "writes_per_s": statistics.median(x["writes_per_s"] for x in found),
                "min": min(x["writes_per_s"] for x in found),
                "max": max(x["writes_per_s"] for x in found),
                "cpu_us_per_op": statistics.median(x["cpu_us_per_op"] for x in found),
                "server_cpu_us_per_op": _median_or_none([x["server_cpu_us_per_op"] for x in found]),
                "runs": found,
            }
            for mode, found in by_mode.items()
        }
        for chain, by_mode in runs.items()
    }
    out["ratio"] = {mode: _spread(values) for mode, values in ratios.items()}
    out["seal_every_s"] = seal_every
    out["repeats"] = repeats
    return out
