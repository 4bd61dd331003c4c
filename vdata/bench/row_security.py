"""What row-level security costs on the hot project and task calls, in one run.

Each call runs in three variants through vdata, one connection each
(latency: sequential awaits), alternating small batches so that load from
other processes on a shared machine hits every variant alike:

- ``on``: what ships, as the service role: the policies of app.projects and
  app.tasks apply; each statement sets its acting user itself,
  ``(SELECT app.act_as(:as_user))``, in the same round trip.
- ``off``: the same calls as ``vdata_bench_bypass``, a copy of the service
  role with BYPASSRLS (``bypass_role.sql``): the policies are skipped.
- ``tx``: ``on``, but each call inside ``db.transaction(as_user=...)``: the
  acting user set by a statement of its own (BEGIN, set_config, the call,
  COMMIT), the alternative to setting it inside the statement.

``gate`` times what the in-statement setting itself adds:
``SELECT (SELECT app.act_as($1))`` against ``SELECT $1::uuid IS NOT NULL``,
prepared, alternating on one raw asyncpg connection.

Besides wall time, each batch's CPU time is kept: this process's and its
server backend's (Linux ``/proc/<pid>/schedstat``, when the server runs on
this machine). Ratios are medians over rounds of the batches' ratios, each
round's batches run back to back. ``server`` adds the server's own execution
time of the reads (``EXPLAIN (ANALYZE, TIMING OFF)``, planning and network
excluded), policies applied against skipped.

Calls, all by the project's owner: ``project_get``, ``task_get``,
``task_page`` (one keyset page of 50 tasks), ``task_status`` (a status
change with its audit row, alternating todo / in_progress).
"""

from __future__ import annotations

__all__ = ["VARIANTS", "row_security"]

import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import vdata
from vdata.bench.operations import ACTOR, Workload, cheap_settings, read_sql
from vdata.bench.runner import Progress, rotated
from vdata.models.projects import NewProject
from vdata.models.tasks import NewTask
from vdata.queries import load

VARIANTS = ("on", "off", "tx")
CALLS = ("project_get", "task_get", "task_page", "task_status")
PAGE = 50
BATCH = 10
BYPASS_ROLE = "vdata_bench_bypass"

Call = Callable[[Any], Awaitable[object]]
Run = Callable[[], Awaitable[object]]
_ACTIVE = load().bind("acting.get_row_security_active", bool)
# The gate's own cost, as raw statements (no vdata in between).
_GATE = "SELECT (SELECT app.act_as($1))"
_NO_GATE = "SELECT $1::uuid IS NOT NULL"
_PID = "SELECT pg_backend_pid()"


class _Clock:
    """Wall time per call of each batch, and CPU time (this process + one backend) summed.

    The backend's CPU time is read from /proc when the server runs on this
    machine; otherwise only this process's is kept and ``cpu_us`` is None.
    """

    def __init__(self, pid: int | None) -> None:
        known = pid is not None and os.path.exists(f"/proc/{pid}/schedstat")
        self.pid = pid if known else None
        self.wall: list[float] = []
        self.cpu: list[float] = []

    async def batch(self, run: Run, n: int) -> None:
        cpu0, server0 = time.process_time_ns(), self._server_ns()
        started = time.perf_counter()
        for _ in range(n):
            await run()
        self.wall.append((time.perf_counter() - started) / n * 1e6)
        self.cpu.append((time.process_time_ns() - cpu0 + self._server_ns() - server0) / n / 1e3)

    def _server_ns(self) -> int:
        if self.pid is None:
            return 0
        with open(f"/proc/{self.pid}/schedstat", encoding="ascii") as f:
            return int(f.read().split()[0])  # ns this process has run on a CPU


def _paired(a: list[float], b: list[float]) -> float:
    """Median over rounds of a / b: each round's batches ran back to back."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def _summary(clocks: dict[str, _Clock], base: str) -> dict[str, Any]:
    """Per variant: median wall and CPU µs per call; ratios to *base* (median of rounds)."""
    cpu_known = all(c.pid is not None for c in clocks.values())
    out: dict[str, Any] = {
        "us": {v: statistics.median(c.wall) for v, c in clocks.items()},
        "cpu_us": {v: statistics.median(c.cpu) if cpu_known else None for v, c in clocks.items()},
    }
    for v, c in clocks.items():
        if v == base:
            continue
        out[f"{v}_vs_{base}"] = _paired(c.wall, clocks[base].wall)
        out[f"{v}_vs_{base}_cpu"] = _paired(c.cpu, clocks[base].cpu) if cpu_known else None
    return out


async def _fixture(
    db: vdata.Database, w: Workload
) -> tuple[uuid.UUID, dict[str, Call], dict[str, dict[str, object]]]:
    """Create a private project with a page of tasks; return the owner, calls, read params."""
    owner = w.owner_id
    assert owner is not None
    project = await db.projects.create(
        NewProject(name=f"rls bench {w.run}"), owner_id=owner, actor=ACTOR
    )
    tasks = await db.tasks.create_many(
        project.id, [NewTask(title=f"t{i}") for i in range(PAGE)], as_user=owner, actor=ACTOR
    )
    read, moved = tasks[0].id, tasks[1].id
    statuses = ("in_progress", "todo")
    flips = iter(range(1 << 62))

    async def project_get(a: Any) -> object:
        return await a.projects.get(project.id, as_user=owner)

    async def task_get(a: Any) -> object:
        return await a.tasks.get(read, as_user=owner)

    async def task_page(a: Any) -> object:
        return await a.tasks.list_by_project(project.id, as_user=owner, limit=PAGE)

    async def task_status(a: Any) -> object:
        status = statuses[next(flips) % 2]
        return await a.tasks.set_status(moved, status, as_user=owner, actor=ACTOR)

    calls: dict[str, Call] = {
        "project_get": project_get,
        "task_get": task_get,
        "task_page": task_page,
        "task_status": task_status,
    }
    after: dict[str, object] = {"status": None, "after_at": None, "after_id": None}
    params: dict[str, dict[str, object]] = {
        "project_get": {"id": project.id, "as_user": owner},
        "task_get": {"id": read, "as_user": owner},
        "task_page": {"project_id": project.id, "as_user": owner, "page_size": PAGE + 1, **after},
    }
    return owner, calls, params


async def _backend_pid(db: vdata.Database) -> int:
    """The server process behind *db*'s one pooled connection."""
    async with db._pool.connection() as conn:
        return int(await conn.fetchval(_PID))


def _runs(
    db: vdata.Database, skipped: vdata.Database, user: uuid.UUID, call: Call
) -> dict[str, Run]:
    """The three variants of *call*: policies applied, skipped, acting user set apart."""

    async def on() -> object:
        return await call(db)

    async def off() -> object:
        return await call(skipped)

    async def tx() -> object:
        async with db.transaction(as_user=user) as held:
            return await call(held)

    return {"on": on, "off": off, "tx": tx}


async def _gate(dsn: str, user: uuid.UUID, rounds: int) -> dict[str, Any]:
    raw = await asyncpg.connect(dsn)
    try:
        pid = int(await raw.fetchval(_PID))
        stmts = {"gate": await raw.prepare(_GATE), "no_gate": await raw.prepare(_NO_GATE)}

        def run(stmt: Any) -> Run:
            return lambda: stmt.fetchval(user)

        runs = {name: run(stmt) for name, stmt in stmts.items()}
        clocks = {name: _Clock(pid) for name in stmts}
        for r in range(rounds):
            for name in rotated(list(stmts), r):
                await clocks[name].batch(runs[name], BATCH * 5)
        return _summary(clocks, "no_gate")
    finally:
        await raw.close()


_READS = {
    "project_get": "projects.get_project_by_id",
    "task_get": "tasks.get_task_by_id",
    "task_page": "tasks.list_tasks_by_project",
}


async def _server_side(
    app_dsn: str, params: dict[str, dict[str, object]], rounds: int
) -> dict[str, Any]:
    """Server execution time (EXPLAIN ANALYZE, no timing per node) of the reads, on vs off."""
    queries = load()
    conns = {
        "on": await asyncpg.connect(app_dsn),
        "off": await asyncpg.connect(app_dsn, user=BYPASS_ROLE),
    }
    out: dict[str, Any] = {}
    try:
        for name, query_name in _READS.items():
            q = queries[query_name]
            args = q.arguments((), params[name])
            sql = f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {q.sql}"
            times: dict[str, list[float]] = {v: [] for v in conns}
            for r in range(rounds):
                for v in rotated(list(conns), r):
                    plan = json.loads(await conns[v].fetchval(sql, *args))
                    times[v].append(plan[0]["Execution Time"] * 1e3)
            out[name] = {
                "us": {v: statistics.median(ts) for v, ts in times.items()},
                "on_vs_off": _paired(times["on"], times["off"]),
            }
    finally:
        for conn in conns.values():
            await conn.close()
    return out


async def row_security(
    w: Workload, owner_dsn: str, *, rounds: int, progress: Progress
) -> dict[str, Any]:
    """Return µs per call of each call and variant over *rounds* rounds, and their ratios."""
    settings = cheap_settings(pool_min_size=1, pool_max_size=1)
    out: dict[str, Any] = {"rounds": rounds, "batch": BATCH, "calls": {}}
    async with await vdata.connect(w.app_dsn, settings=settings) as db:
        # False when the contenders connect as the owner (--dsn): nothing to measure.
        out["row_security_active"] = active = bool(await db.fetchval(_ACTIVE, ()))
        if not active:
            return out
        # The copy logs in with the service role's password, where it has one
        # (bypass_role.sql reads it from this session's setting).
        password = conninfo_to_dict(w.app_dsn).get("password") or ""
        owner = await asyncpg.connect(
            owner_dsn, server_settings={"vdata.bench_bypass_password": str(password)}
        )
        try:
            await owner.execute(read_sql("bypass_role.sql"))
        finally:
            await owner.close()
        user, calls, params = await _fixture(db, w)
        bypass_dsn = make_conninfo(w.app_dsn, user=BYPASS_ROLE)
        async with await vdata.connect(bypass_dsn, settings=settings) as skipped:
            pid_on, pid_off = await _backend_pid(db), await _backend_pid(skipped)
            pids = {"on": pid_on, "off": pid_off, "tx": pid_on}
            for name in CALLS:
                runs = _runs(db, skipped, user, calls[name])
                for run in runs.values():  # warm-up: connections, plans
                    await _Clock(None).batch(run, BATCH)
                clocks = {v: _Clock(pids[v]) for v in VARIANTS}
                for r in range(rounds):
                    for variant in rotated(VARIANTS, r):
                        await clocks[variant].batch(runs[variant], BATCH)
                out["calls"][name] = _summary(clocks, "off")
                progress.note(f"row_security: {name}")
            out["server"] = await _server_side(w.app_dsn, params, rounds * 2)
        out["gate"] = await _gate(w.app_dsn, user, rounds * 4)
    return out
