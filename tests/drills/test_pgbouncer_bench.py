"""PgBouncer (transaction mode) against a direct connection: pooled reads and transactions.

One run, the same server and the same workload, rounds interleaved
(direct, PgBouncer, direct, ...) so that the shared machine's noise hits
both alike. vdata's statement cache is left unset: 100 direct, 0 through
PgBouncer (chosen at open). Prints its figures; asserts only that both
paths did the work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import vdata
from tests import _pgbouncer
from tests.integration._users import new_user
from tests.integration.test_pgbouncer import _users, settings
from vdata.testing.admin import dbname
from vdata.testing.providers import APP_ROLE, Server

pytestmark = [
    pytest.mark.drill,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        _pgbouncer.find_pgbouncer() is None,
        reason="pgbouncer is not installed (apt-get install pgbouncer); "
        "the PgBouncer measurement needs the real binary",
    ),
]

TASKS = 16
POOL = 10  # vdata's pool, direct and to PgBouncer
SERVER_POOL = 4  # PgBouncer's server connections
ROUNDS = 3
SECONDS = 1.0

Figure = Callable[[str], None]
Op = Callable[[vdata.Database, Any], Awaitable[object]]


@pytest.fixture
def bouncer(vdata_server: Server) -> Iterator[_pgbouncer.PgBouncer]:
    started = _pgbouncer.start(
        vdata_server.host, vdata_server.port, _users(vdata_server), pool_size=SERVER_POOL
    )
    try:
        yield started
    finally:
        started.stop()


async def rate(db: vdata.Database, op: Op, ids: list[Any]) -> float:
    done = 0
    deadline = time.monotonic() + SECONDS

    async def one(t: int) -> None:
        nonlocal done
        i = t
        while time.monotonic() < deadline:
            await op(db, ids[i % len(ids)])
            done += 1
            i += TASKS

    await asyncio.gather(*(one(t) for t in range(TASKS)))
    return done / SECONDS


async def pooled_read(db: vdata.Database, user_id: Any) -> object:
    return await db.users.get(user_id)


async def transaction(db: vdata.Database, user_id: Any) -> object:
    async with db.transaction(actor="bench") as tx:
        user = await tx.users.get(user_id)
        return await tx.users.get_by_email(user.email)


async def test_pgbouncer_against_direct(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str, figure: Figure
) -> None:
    conf: dict[str, Any] = {"statement_cache_size": None, "pool_max_size": POOL}
    direct = await vdata.connect(vdata_app_dsn, settings=settings(**conf))
    pooled = await vdata.connect(
        bouncer.dsn(dbname(vdata_app_dsn), APP_ROLE), settings=settings(**conf)
    )
    # Direct without the statement cache: splits PgBouncer's cost into the
    # cache it rules out and the extra hop.
    uncached = await vdata.connect(
        vdata_app_dsn, settings=settings(statement_cache_size=0, pool_max_size=POOL)
    )
    contenders = {"direct": direct, "direct, cache 0": uncached, "pgbouncer": pooled}
    try:
        ids = [
            (await direct.users.create(new_user(f"bench{i}"), actor="bench")).id for i in range(50)
        ]
        results: dict[str, dict[str, list[float]]] = {}
        for name, op in (("pooled reads", pooled_read), ("transactions", transaction)):
            per = results[name] = {k: [] for k in contenders}
            for db in contenders.values():  # warm up
                await rate(db, op, ids)
            for _ in range(ROUNDS):
                for key, db in contenders.items():
                    per[key].append(await rate(db, op, ids))
        caches = (direct.settings.statement_cache_size, pooled.settings.statement_cache_size)
    finally:
        for db in contenders.values():
            await db.close()
    lines = []
    for name, per in results.items():
        d, u, b = max(per["direct"]), max(per["direct, cache 0"]), max(per["pgbouncer"])
        lines.append(
            f"{name}: direct {[round(x) for x in per['direct']]}/s, direct with cache 0 "
            f"{[round(x) for x in per['direct, cache 0']]}/s, PgBouncer "
            f"{[round(x) for x in per['pgbouncer']]}/s; best-of ratios PgBouncer/direct "
            f"{b / d:.2f}, cache 0/direct {u / d:.2f}, PgBouncer/cache 0 {b / u:.2f}"
        )
    figure(
        f"{TASKS} tasks, vdata pool {POOL}, PgBouncer pool {SERVER_POOL} (transaction mode), "
        f"{ROUNDS} interleaved rounds of {SECONDS:g} s, statement cache direct/PgBouncer "
        f"{caches[0]}/{caches[1]}: " + "; ".join(lines)
    )
    assert caches == (100, 0)
    for per in results.values():
        assert all(min(rates) > 0 for rates in per.values())
