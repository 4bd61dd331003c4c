"""What statement listeners cost: ``db.users.get`` with none, a no-op one, and QueryStats.

One pool of one connection, latency mode (one call at a time), the three
variants interleaved in every repeat (rotated order), so the machine's load
hits them alike. The difference to "off" in the same repeat is the cost per
call; the median and range over repeats are reported. ``guard_ns`` is the
one test the hot path makes when nothing listens (``observers.active``),
timed on its own: what the hooks cost a service that does not use them;
``emit_ns`` the same for building and dispatching one event to each listener,
free of the round trip's noise.
"""

from __future__ import annotations

__all__ = ["VARIANTS", "hooks"]

import statistics
import timeit
from typing import Any

import vdata
from vdata.bench.operations import Workload, cheap_settings
from vdata.bench.runner import Progress, measure, rotated
from vdata.engine.observe import Observers, StatementEvent

VARIANTS = ("off", "noop listener", "QueryStats")


def _noop(event: StatementEvent) -> None:
    return None


def guard_ns(number: int = 1_000_000) -> float:
    """Return the nanoseconds of the no-listener test, net of an empty loop."""
    observers = Observers()
    env = {"o": observers}
    guarded = min(timeit.repeat("if o.active: pass", globals=env, number=number, repeat=5))
    empty = min(timeit.repeat("pass", number=number, repeat=5))
    return max(0.0, (guarded - empty) / number * 1e9)


def emit_ns(listener: Any, number: int = 200_000) -> float:
    """Return the nanoseconds of building one event and handing it to *listener*."""
    observers = Observers()
    observers.add(listener)
    env = {"emit": observers.emit}
    stmt = 'emit("users.get_user_by_id", "ok", 0.0001, 0.0, False, None, "SELECT 1")'
    timed = min(timeit.repeat(stmt, globals=env, number=number, repeat=5))
    empty = min(timeit.repeat("pass", number=number, repeat=5))
    return max(0.0, (timed - empty) / number * 1e9)


def _otel_emit_ns(db: Any) -> float | None:
    """The event through the OpenTelemetry listener (SDK providers, nothing exported)."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        from vdata.exporters.otel import OpenTelemetryListener
    except ImportError:
        return None  # the otel extra is not installed
    tracer, meter = TracerProvider(), MeterProvider()
    try:
        listener = OpenTelemetryListener(db, tracer_provider=tracer, meter_provider=meter)
        return emit_ns(listener, number=2_000)  # ~100x dearer than the others
    finally:
        tracer.shutdown()
        meter.shutdown()


async def hooks(
    w: Workload, *, seconds: float, warmup: float, repeats: int, progress: Progress
) -> dict[str, Any]:
    """Time ``db.users.get`` per listener variant, interleaved; return the figures."""
    settings = cheap_settings(pool_min_size=1, pool_max_size=1)
    async with await vdata.connect(w.app_dsn, settings=settings) as db:
        nxt = w.cycle_ids()
        users = db.users
        stats = vdata.QueryStats()
        listeners: dict[str, Any] = {"off": None, "noop listener": _noop, "QueryStats": stats}

        async def run(_w: int, n: int) -> None:
            for _ in range(n):
                await users.get(nxt())

        current: list[Any] = []  # the listener installed now, if any

        def use(variant: str) -> None:
            while current:
                db.remove_statement_listener(current.pop())
            chosen = listeners[variant]
            if chosen is not None:
                db.add_statement_listener(chosen)
                current.append(chosen)

        cells: dict[str, list[Any]] = {v: [] for v in VARIANTS}
        for variant in VARIANTS:  # warm up every path
            use(variant)
            await measure(
                run, op="get_by_id", contender=variant, mode="latency", repeat=-1, seconds=warmup
            )
        for r in range(repeats):
            for variant in rotated(list(VARIANTS), r):
                use(variant)
                cell = await measure(
                    run,
                    op="get_by_id",
                    contender=variant,
                    mode="latency",
                    repeat=r,
                    seconds=seconds,
                )
                cells[variant].append(cell)
            progress.note(
                "hooks repeat {}: {}".format(
                    r, ", ".join(f"{v} {cells[v][-1].us_per_op:.1f} us" for v in VARIANTS)
                )
            )
        use("off")
        seen = stats.snapshot().get("users.get_user_by_id")
        otel_ns = _otel_emit_ns(db)
    out: dict[str, Any] = {"op": "users.get (get_by_id), pool of 1, latency", "variants": {}}
    for variant in VARIANTS:
        found = cells[variant]
        wall = [c.us_per_op for c in found]
        cpu = [c.cpu_us_per_op for c in found]
        entry = {
            "us_per_op": statistics.median(wall),
            "min_us": min(wall),
            "max_us": max(wall),
            "cpu_us_per_op": statistics.median(cpu),
            "calls": sum(c.ops for c in found),
        }
        if variant != "off":
            for key, attr in (("delta_us", "us_per_op"), ("delta_cpu_us", "cpu_us_per_op")):
                deltas = [
                    getattr(mine, attr) - getattr(base, attr)
                    for mine, base in zip(found, cells["off"], strict=True)
                ]
                entry[key] = statistics.median(deltas)
                entry[f"{key}_min"] = min(deltas)
                entry[f"{key}_max"] = max(deltas)
        out["variants"][variant] = entry
    out["guard_ns"] = guard_ns()
    out["emit_ns"] = {"noop listener": emit_ns(_noop), "QueryStats": emit_ns(vdata.QueryStats())}
    if otel_ns is not None:
        out["emit_ns"]["OpenTelemetry"] = otel_ns
    out["stats_calls_seen"] = seen.calls if seen is not None else 0
    return out
