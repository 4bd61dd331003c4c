"""QueryStats: per-query counts, errors, retries and a latency histogram, with no dependency.

A statement listener (``db.add_statement_listener(stats)``) that keeps, for
each named query, plain counters and a fixed-bucket histogram of durations.
``snapshot()`` returns them as Structs, ready to print, serialise with
msgspec, or export (``vdata.exporters.prometheus`` reads them).
"""

from __future__ import annotations

__all__ = ["DEFAULT_BUCKETS", "QueryStats", "QueryStatsSnapshot"]

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise

import msgspec

from vdata.engine.observe import StatementEvent

# Upper bounds in seconds (le, as Prometheus counts them): 100 us to 10 s.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class QueryStatsSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One query's figures at one moment.

    ``calls`` counts attempts: ``ok + errors + retried + refused``.
    ``buckets`` are the histogram's upper bounds (seconds) and ``counts``
    the attempts that took at most that long, per bucket (not cumulative);
    the last count is for attempts slower than every bound. Durations and
    the histogram cover attempts that reached a connection (not refused).
    """

    query: str
    calls: int
    ok: int
    errors: dict[str, int]
    retried: int
    refused: int
    in_transaction: int
    seconds_total: float
    pool_wait_seconds_total: float
    buckets: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def measured(self) -> int:
        """How many attempts the histogram holds."""
        return sum(self.counts)

    def mean(self) -> float | None:
        """The mean duration in seconds, or None before any measured attempt."""
        n = self.measured
        return self.seconds_total / n if n else None

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding quantile *q* (0..1); ``inf`` past the last.

        An estimate no finer than the buckets; None before any measured attempt.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be between 0 and 1")
        n = self.measured
        if not n:
            return None
        rank = max(1, math.ceil(q * n))
        seen = 0
        for bound, count in zip((*self.buckets, math.inf), self.counts, strict=True):
            seen += count
            if seen >= rank:
                return bound
        return math.inf


class _Entry:
    __slots__ = (
        "calls",
        "counts",
        "errors",
        "in_transaction",
        "ok",
        "pool_wait",
        "refused",
        "retried",
        "seconds",
    )

    def __init__(self, buckets: int) -> None:
        self.calls = 0
        self.ok = 0
        self.retried = 0
        self.refused = 0
        self.in_transaction = 0
        self.seconds = 0.0
        self.pool_wait = 0.0
        self.errors: dict[str, int] = {}
        self.counts = [0] * (buckets + 1)


class QueryStats:
    """Per-query statistics; add it as a statement listener.

    ``stats = vdata.QueryStats(); db.add_statement_listener(stats)``; later
    ``stats.snapshot()["users.get_user_by_id"].quantile(0.99)``. *buckets*
    are the histogram's upper bounds in seconds, increasing.
    """

    __slots__ = ("_bounds", "_entries")

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        bounds = tuple(float(b) for b in buckets)
        if not bounds or any(b <= a for a, b in pairwise(bounds)):
            raise ValueError("buckets must be a non-empty, strictly increasing sequence")
        self._bounds = bounds
        self._entries: dict[str, _Entry] = {}

    @property
    def buckets(self) -> tuple[float, ...]:
        """The histogram's upper bounds, in seconds."""
        return self._bounds

    def __call__(self, event: StatementEvent) -> None:
        """Count *event* (the listener protocol)."""
        entry = self._entries.get(event.query)
        if entry is None:
            entry = self._entries[event.query] = _Entry(len(self._bounds))
        entry.calls += 1
        outcome = event.outcome
        if event.in_transaction:
            entry.in_transaction += 1
        if outcome == "refused":
            entry.refused += 1
            return
        if outcome == "ok":
            entry.ok += 1
        elif outcome == "retried":
            entry.retried += 1
        else:
            name = event.error or "Exception"
            entry.errors[name] = entry.errors.get(name, 0) + 1
        entry.seconds += event.duration
        entry.pool_wait += event.pool_wait
        entry.counts[bisect_left(self._bounds, event.duration)] += 1

    def snapshot(self) -> dict[str, QueryStatsSnapshot]:
        """Return every query's figures so far, by query name."""
        return {
            name: QueryStatsSnapshot(
                query=name,
                calls=e.calls,
                ok=e.ok,
                errors=dict(e.errors),
                retried=e.retried,
                refused=e.refused,
                in_transaction=e.in_transaction,
                seconds_total=e.seconds,
                pool_wait_seconds_total=e.pool_wait,
                buckets=self._bounds,
                counts=tuple(e.counts),
            )
            for name, e in sorted(self._entries.items())
        }

    def reset(self) -> None:
        """Forget every figure."""
        self._entries.clear()
