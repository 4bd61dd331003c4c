"""Custom against generic plans of the filtered task listings, timed in one run.

``python -m vdata.bench.filter_plans [--scale S] [--big N] [--runs R] [--dsn OWNER_DSN]``

A prepared statement is planned for its parameters (a custom plan) for its
first five runs; then PostgreSQL may keep one generic plan for all
parameters. ``tasks.find`` (``tasks.list_tasks_matching``) has one required
index condition (``project_id = any(...)``) and optional filters written
``(:x IS NULL OR col >= :x)``. This script measures what that costs in each
plan: the ``vdata explain`` seed at *scale* (scale 1: 10k projects, 200k
tasks) plus one big project of *big* tasks with due dates over a year,
then each case R times under ``plan_cache_mode = force_custom_plan`` and
``force_generic_plan``, interleaved, and prints the median milliseconds
and each plan's top scan node.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
import uuid
from typing import Any

import asyncpg

import vdata
from vdata.bench.bulk import scratch_database
from vdata.check import explain
from vdata.models.projects import NewProject
from vdata.models.tasks import NewTask
from vdata.models.users import NewUser
from vdata.queries import load
from vdata.settings import Settings

_PASSWORD = "plans pass phrase 1"  # noqa: S105 - a throwaway database
_MODES = ("force_custom_plan", "force_generic_plan")


async def _big_project(owner_dsn: str, big: int) -> tuple[uuid.UUID, uuid.UUID]:
    settings = Settings.from_env(env={}, argon2_time_cost=1, argon2_memory_cost_kib=1024)
    async with await vdata.connect(owner_dsn, settings=settings) as db:
        user = await db.users.create(
            NewUser(username="plans-owner", email="plans@example.org", password=_PASSWORD),
            actor="bench",
        )
        project = await db.projects.create(NewProject(name="big"), owner_id=user.id, actor="bench")
        start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        for first in range(0, big, 10_000):
            batch = [
                NewTask(
                    title=f"t{i}",
                    priority=i % 5,
                    due_at=start + dt.timedelta(minutes=i * 525_600 // max(big, 1)),
                )
                for i in range(first, min(big, first + 10_000))
            ]
            await db.tasks.create_many(project.id, batch, as_user=user.id, actor="bench")
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return user.id, project.id


def _node(plan: dict[str, Any]) -> str:
    """Return the first scan of app.tasks and the index it (or its bitmap) uses."""
    stack = [plan["Plan"]]
    while stack:
        node = stack.pop(0)
        if node.get("Relation Name") == "tasks":
            indexes = [node.get("Index Name")]
            below = list(node.get("Plans", []))
            while below:
                child = below.pop(0)
                indexes.append(child.get("Index Name"))
                below.extend(child.get("Plans", []))
            used = ", ".join(i for i in indexes if i) or "no index"
            return f"{node['Node Type']} on tasks via {used}"
        stack.extend(node.get("Plans", []))
    return "no scan of tasks"


async def _measure(owner_dsn: str, cases: dict[str, dict[str, object]], runs: int) -> None:
    q = load()["tasks.list_tasks_matching"]
    conn = await asyncpg.connect(owner_dsn)
    try:
        stmt = await conn.prepare(q.sql)
        explain_stmt = await conn.prepare("EXPLAIN (FORMAT JSON) " + q.sql)
        times: dict[tuple[str, str], list[float]] = {}
        plans: dict[tuple[str, str], str] = {}
        for run in range(runs):
            for name, params in cases.items():
                args = [params.get(p) for p in q.params]
                for mode in _MODES if run % 2 == 0 else reversed(_MODES):
                    await conn.execute("SELECT set_config('plan_cache_mode', $1, false)", mode)
                    started = time.perf_counter()
                    rows = await stmt.fetch(*args)
                    times.setdefault((name, mode), []).append(
                        (time.perf_counter() - started) * 1000
                    )
                    if run == 0:
                        found = json.loads(await explain_stmt.fetchval(*args))[0]
                        plans[name, mode] = f"{_node(found)}, {len(rows)} rows"
        print(f"\n{'case':44} {'plan':8} {'median ms':>10}  top scan on tasks, rows returned")
        for name in cases:
            for mode in _MODES:
                median = statistics.median(times[name, mode])
                label = mode.removeprefix("force_").removesuffix("_plan")
                print(f"{name:44} {label:8} {median:10.2f}  {plans[name, mode]}")
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    """Seed, add the big project, time every case in both plan modes."""
    parser = argparse.ArgumentParser(prog="python -m vdata.bench.filter_plans")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--big", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dsn", help="owner DSN of a scratch database (migrated, written to)")
    args = parser.parse_args(argv)
    with scratch_database(args.dsn) as owner:
        counts = explain.seed(owner, scale=args.scale)
        print(f"seeded: {counts}", file=sys.stderr)
        user, big = asyncio.run(_big_project(owner, args.big))
        small = asyncio.run(_some_projects(owner, 20))
        week = dt.datetime(2030, 3, 1, tzinfo=dt.UTC)
        base: dict[str, object] = {"as_user": user, "offset": 0, "page_size": 50}
        cases: dict[str, dict[str, object]] = {
            "big project, no filter": {**base, "project_ids": [big]},
            "big project, due in one week": {
                **base,
                "project_ids": [big],
                "due_from": week,
                "due_to": week + dt.timedelta(days=7),
            },
            "big project, priority 4, todo": {
                **base,
                "project_ids": [big],
                "priority_min": 4,
                "statuses": ["todo"],
            },
            "20 seeded projects, no filter": {**base, "project_ids": small},
            "20 seeded projects, status todo": {
                **base,
                "project_ids": small,
                "statuses": ["todo"],
            },
        }
        asyncio.run(_measure(owner, cases, args.runs))
    return 0


async def _some_projects(owner_dsn: str, count: int) -> list[uuid.UUID]:
    q = load()["projects.list_projects_after"]
    conn = await asyncpg.connect(owner_dsn)
    try:
        # Public seeded projects, as any user may list them: the first *count* by name.
        params = {
            "as_user": uuid.UUID(int=0),
            "search": None,
            "owned_only": False,
            "archived": True,
            "after_name": None,
            "after_id": None,
            "page_size": count,
        }
        rows = await conn.fetch(q.sql, *[params[p] for p in q.params])
        return [r["id"] for r in rows]
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
