"""Stream every audit row through ``db.audit.export()`` and report this process's RSS.

Run as ``python -m vdata.bench.stream DSN`` by ``vdata bench`` in a fresh
process, so that memory the benchmark's other phases left in the allocator
neither hides growth nor counts as growth. Prints one JSON object.
"""

from __future__ import annotations

__all__ = ["main", "rss_bytes", "stream"]

import asyncio
import gc
import os
import resource
import sys
import time
from typing import Any

import msgspec


def rss_bytes() -> int:
    """Current resident set size; the peak so far where /proc is missing."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def stream(dsn: str, *, prefetch: int = 1000) -> dict[str, Any]:
    """Stream all audit rows as the service role; return rows, time, CPU and RSS growth."""
    import vdata
    from vdata.bench.operations import cheap_settings

    async with await vdata.connect(dsn, settings=cheap_settings()) as db:
        await db.health()  # the pool and its statement cache exist before the baseline
        gc.collect()
        base = peak = rss_bytes()
        count = 0
        started = time.perf_counter()
        cpu0 = time.process_time()
        async for _event in db.audit.export(prefetch=prefetch):
            count += 1
            if count % 5000 == 0:
                peak = max(peak, rss_bytes())
        peak = max(peak, rss_bytes())
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    return {
        "rows": count,
        "seconds": wall,
        "rows_per_s": count / wall if wall else 0.0,
        "cpu_us_per_row": cpu / count * 1e6 if count else 0.0,
        "rss_base_mb": base / 2**20,
        "rss_peak_mb": peak / 2**20,
        "rss_growth_mb": (peak - base) / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m vdata.bench.stream DSN``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vdata.bench.stream DSN", file=sys.stderr)
        return 2
    result = asyncio.run(stream(args[0]))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
