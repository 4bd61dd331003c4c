"""One benchmark run: seed, run every operation of every contender in both modes, extras.

``run(config, owner_dsn, app_dsn)`` returns a ``Results`` (raw cells, extras
and the machine) that ``vdata.bench.report`` turns into tables and a chart.
"""

from __future__ import annotations

__all__ = ["Config", "Results", "machine", "run"]

import datetime as dt
import os
import platform
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

import asyncpg
import msgspec

import vdata
from vdata.bench import extras as extra
from vdata.bench.contenders import CONTENDERS, Contender, RawPool, RawTuned, VdataPool, VdataTx
from vdata.bench.hooks import hooks
from vdata.bench.operations import BULK, OPS, Workload, cheap_settings, seed
from vdata.bench.row_security import row_security
from vdata.bench.runner import BATCH, BatchFn, Cell, Progress, measure, rotated

EXTRAS = ("authenticate", "loop_lag", "stream_rss", "audit_writes", "hooks", "row_security")
THROUGHPUT_BATCH = 2


class Config(msgspec.Struct, kw_only=True):
    """What one run measures and for how long."""

    quick: bool = False
    ops: tuple[str, ...] = (*OPS, *EXTRAS)
    contenders: tuple[str, ...] = CONTENDERS
    repeats: int = 5
    seconds: float = 0.6  # per cell and repeat
    warmup: float = 0.2
    users: int = 5000
    bulk_rows: int = 10_000
    audit_rows: int = 1_000_000
    tasks: int = 64
    pool_size: int = 10
    logins: int = 32
    login_calls: int = 4

    @classmethod
    def build(cls, *, quick: bool, only: tuple[str, ...] = ()) -> Config:
        """Return the full or ``--quick`` configuration, limited to *only* when given."""
        unknown = sorted(set(only) - {*OPS, *EXTRAS})
        if unknown:
            raise ValueError(f"unknown operation(s): {', '.join(unknown)}")
        base = (
            cls(
                quick=True,
                repeats=3,
                seconds=0.12,
                warmup=0.05,
                users=1000,
                bulk_rows=2000,
                audit_rows=100_000,
                login_calls=2,
            )
            if quick
            else cls()
        )
        if only:
            base.ops = tuple(op for op in (*OPS, *EXTRAS) if op in only)
        return base


class Results(msgspec.Struct, kw_only=True):
    """Everything one run measured, plus where and when."""

    config: Config
    machine: dict[str, Any]
    cells: list[Cell]
    extras: extra.Extras
    skipped: dict[str, str]
    errors: dict[str, str]  # what failed, by "mode op" or extra name
    started: str
    seconds: float


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(server_version: str) -> dict[str, Any]:
    """Describe this machine and the versions in play."""
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "postgresql": server_version,
        "asyncpg": _version("asyncpg"),
        "sqlalchemy": _version("sqlalchemy"),
        "msgspec": _version("msgspec"),
        "vdata": vdata.__version__,
    }


def _available(names: tuple[str, ...], skipped: dict[str, str]) -> tuple[str, ...]:
    if "sqlalchemy" in names:
        try:
            import sqlalchemy.ext.asyncio  # noqa: F401
        except ImportError as exc:
            skipped["sqlalchemy"] = f"not installed ({exc}); pip install 'vdata-pg[bench]'"
            names = tuple(n for n in names if n != "sqlalchemy")
    return names


async def _op(
    cfg: Config, op: str, runs: dict[str, BatchFn], mode: str, progress: Progress
) -> list[Cell]:
    """Warm up, then run the interleaved repeats of *op* for every contender in *runs*."""
    size_tasks = 1 if mode == "latency" else cfg.tasks
    bulk = op == BULK
    # Bulk: one call per cell. Otherwise calls in batches (a transaction
    # contender runs one batch per transaction): 10 in latency mode, 2 per
    # task in throughput mode, so that 64 tasks of a slow contender do not
    # outlast the cell by much.
    batch = 1 if bulk else (BATCH if mode == "latency" else THROUGHPUT_BATCH)
    seconds, warmup = (0.0, 0.0) if bulk else (cfg.seconds, cfg.warmup)
    common: dict[str, Any] = {"op": op, "mode": mode, "tasks": size_tasks, "batch": batch}
    for name, fn in runs.items():  # warm caches and connections
        await measure(fn, contender=name, repeat=-1, seconds=warmup, **common)
    cells = []
    for r in range(cfg.repeats):
        for name in rotated(list(runs), r):
            cell = await measure(runs[name], contender=name, repeat=r, seconds=seconds, **common)
            cells.append(cell)
            progress.step(f"{mode} {op} {name}: {cell.ops_per_s:,.0f} ops/s")
    return cells


async def _mode(
    cfg: Config,
    w: Workload,
    names: tuple[str, ...],
    mode: str,
    progress: Progress,
    errors: dict[str, str],
) -> list[Cell]:
    size = 1 if mode == "latency" else cfg.pool_size
    ops = [op for op in cfg.ops if op in OPS and not (op == BULK and mode == "throughput")]
    if not ops:
        return []
    contenders: list[Contender] = []
    cells: list[Cell] = []
    try:
        for name in names:
            c = make(name, w)
            await c.open(size)
            contenders.append(c)
        for op in ops:
            runs = {c.name: c.batch(op) for c in contenders}
            try:
                cells += await _op(cfg, op, runs, mode, progress)
            except Exception as exc:  # one operation failing does not lose the run
                errors[f"{mode} {op}"] = f"{type(exc).__name__}: {exc}"
                progress.note(f"{mode} {op} FAILED: {type(exc).__name__}: {exc}")
    finally:
        for c in contenders:
            await c.close()
    return cells


async def run(
    cfg: Config, owner_dsn: str, app_dsn: str, *, progress_enabled: bool = True
) -> Results:
    """Seed the database behind *owner_dsn* and run *cfg*; contenders use *app_dsn*.

    A failing operation or extra is recorded in ``Results.errors`` and the
    run goes on; setup failures (seeding, connecting) raise.
    """
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    names = _available(cfg.contenders, skipped)
    run_tag = secrets.token_hex(3)
    owner = await asyncpg.connect(owner_dsn)
    try:
        server_version = str(await owner.fetchval("SHOW server_version"))
        await seed(owner, users=cfg.users, run=run_tag)
    finally:
        await owner.close()
    w = Workload(app_dsn=app_dsn, run=run_tag, bulk_rows=cfg.bulk_rows)
    async with await vdata.connect(app_dsn, settings=cheap_settings()) as db:
        await w.load(db)
    table_ops = [op for op in cfg.ops if op in OPS]
    steps = cfg.repeats * len(names) * (2 * len(table_ops) - (BULK in table_ops))
    progress = Progress(steps + len(set(cfg.ops) & set(EXTRAS)), enabled=progress_enabled)
    cells: list[Cell] = []
    for mode in ("latency", "throughput"):
        cells += await _mode(cfg, w, names, mode, progress, errors)
    found = extra.Extras()
    jobs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "authenticate": lambda: extra.authenticate(
            w, calls=cfg.login_calls, repeats=3, progress=progress
        ),
        "loop_lag": lambda: extra.loop_lag(w, logins=cfg.logins),
        "stream_rss": lambda: extra.stream_rss(
            w, owner_dsn, rows=cfg.audit_rows, progress=progress
        ),
        "audit_writes": lambda: extra.audit_writes(
            w,
            owner_dsn,
            seconds=max(cfg.seconds * 2, 0.5),
            tasks=cfg.tasks,
            pool=cfg.pool_size,
            repeats=2 * cfg.repeats,  # pairs of on/off: the ratio is what counts
        ),
        "hooks": lambda: hooks(
            w, seconds=cfg.seconds, warmup=cfg.warmup, repeats=cfg.repeats, progress=progress
        ),
        "row_security": lambda: row_security(
            w, owner_dsn, rounds=cfg.repeats * (10 if cfg.quick else 30), progress=progress
        ),
    }
    for name, job in jobs.items():
        if name not in cfg.ops:
            continue
        try:
            setattr(found, name, await job())
        except Exception as exc:  # recorded; the other measurements still count
            errors[name] = f"{type(exc).__name__}: {exc}"
        progress.step(name)
    progress.finish()
    return Results(
        config=cfg,
        machine=machine(server_version),
        cells=cells,
        extras=found,
        skipped=skipped,
        errors=errors,
        started=started_at,
        seconds=time.perf_counter() - t0,
    )


def make(name: str, w: Workload) -> Contender:
    """Return the contender called *name* (``sqlalchemy`` imports SQLAlchemy now)."""
    if name == "sqlalchemy":
        from vdata.bench.orm import SqlAlchemy

        return SqlAlchemy(w)
    kinds: dict[str, type[Contender]] = {c.name: c for c in (VdataPool, VdataTx, RawPool, RawTuned)}
    return kinds[name](w)
