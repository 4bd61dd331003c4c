"""Timing: one cell (an operation of one contender in one mode), repeats, interleaving.

A cell runs the contender's batch function (``run(worker, n)``, *n* calls of
the operation) until its time is up: sequentially on one worker (latency
mode) or from many tasks at once (throughput mode). Wall time gives the rate,
``time.process_time()`` the client CPU (all threads of this process; the
server is another process). Repeats are interleaved: every repeat runs every
contender once per operation, in an order rotated by one each repeat, so a
burst of load on the shared machine hits all of them alike.
"""

from __future__ import annotations

__all__ = [
    "BATCH",
    "BatchFn",
    "Cell",
    "Progress",
    "measure",
    "rotated",
]

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import msgspec

BatchFn = Callable[[int, int], Awaitable[None]]
"""``run(worker, n)``: perform the operation *n* times as worker *worker*."""

# Calls per batch: the loop checks the clock between batches, and a
# transaction contender runs one batch inside one transaction.
BATCH = 10

T = TypeVar("T")


class Cell(msgspec.Struct, frozen=True, kw_only=True):
    """What one timed run of one contender on one operation measured."""

    op: str
    contender: str
    mode: str  # "latency" or "throughput"
    repeat: int
    ops: int
    wall_s: float
    cpu_s: float

    @property
    def ops_per_s(self) -> float:
        """Operations per second of wall time."""
        return self.ops / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def us_per_op(self) -> float:
        """Mean wall time per operation, in microseconds."""
        return self.wall_s / self.ops * 1e6 if self.ops else 0.0

    @property
    def cpu_us_per_op(self) -> float:
        """Client CPU time per operation, in microseconds."""
        return self.cpu_s / self.ops * 1e6 if self.ops else 0.0


async def _worker(run: BatchFn, worker: int, deadline: float, batch: int) -> int:
    done = 0
    clock = time.perf_counter
    while clock() < deadline:
        await run(worker, batch)
        done += batch
    return done


async def measure(
    run: BatchFn,
    *,
    op: str,
    contender: str,
    mode: str,
    repeat: int,
    seconds: float,
    tasks: int = 1,
    batch: int = BATCH,
    min_batches: int = 1,
) -> Cell:
    """Run *run* from *tasks* concurrent workers for about *seconds*; return the Cell.

    Every worker finishes the batch it started, so a slow contender may run
    past the deadline; the rate uses the real elapsed time. At least
    *min_batches* batches run (per worker) even when one batch outlasts
    *seconds*.
    """
    cpu0 = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    if tasks == 1:
        done = 0
        for _ in range(min_batches):
            await run(0, batch)
            done += batch
        done += await _worker(run, 0, deadline, batch)
    else:
        counts = await asyncio.gather(*(_worker(run, w, deadline, batch) for w in range(tasks)))
        done = sum(counts)
        if done == 0:  # one batch outlasted the deadline: count one per worker
            counts = await asyncio.gather(*(_worker(run, w, 0.0, batch) for w in range(tasks)))
            done = sum(counts)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    return Cell(
        op=op,
        contender=contender,
        mode=mode,
        repeat=repeat,
        ops=done,
        wall_s=wall,
        cpu_s=cpu,
    )


def rotated(items: Sequence[T], by: int) -> list[T]:
    """Return *items* rotated left by *by* (the contender order of one repeat)."""
    if not items:
        return []
    k = by % len(items)
    return [*items[k:], *items[:k]]


class Progress:
    """One line of progress on stderr, rewritten in place on a terminal."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self._tty = sys.stderr.isatty()
        self._started = time.perf_counter()

    def step(self, what: str) -> None:
        """Count one finished step named *what* and show it."""
        self.done += 1
        self.note(what)

    def note(self, what: str) -> None:
        """Show *what* without counting a step."""
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self._started
        line = f"[{self.done}/{self.total} {elapsed:5.0f}s] {what}"
        if self._tty:
            sys.stderr.write("\r\x1b[2K" + line[:150])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        """End the progress line."""
        if self.enabled and self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
