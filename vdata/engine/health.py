"""Health reports and the counters behind them."""

from __future__ import annotations

__all__ = [
    "BreakerHealth",
    "Counters",
    "Health",
    "PoolHealth",
    "ReplicaHealth",
    "health_report",
    "pool_health",
]

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING

import msgspec

from vdata.engine.failures import translate
from vdata.queries import load

if TYPE_CHECKING:
    from vdata.engine.breaker import CircuitBreaker
    from vdata.engine.pool import ConnectionPool


class Counters:
    """Plain integer counters, bumped on the hot path (no locks: one event loop)."""

    __slots__ = ("connect_failures", "failures", "queries", "retries", "slow_queries")

    def __init__(self) -> None:
        self.queries = 0
        self.retries = 0
        self.slow_queries = 0
        self.connect_failures = 0
        self.failures: Counter[str] = Counter()

    def as_dict(self) -> dict[str, object]:
        """Return a copy of every counter."""
        return {
            "queries": self.queries,
            "retries": self.retries,
            "slow_queries": self.slow_queries,
            "connect_failures": self.connect_failures,
            "failures": dict(self.failures),
        }


class PoolHealth(msgspec.Struct, frozen=True, kw_only=True):
    """The pool's size and use at the moment of the report."""

    size: int
    min_size: int
    max_size: int
    idle: int
    in_use: int


class BreakerHealth(msgspec.Struct, frozen=True, kw_only=True):
    """The circuit breaker's state at the moment of the report."""

    state: str
    consecutive_failures: int
    times_opened: int
    last_failure_kind: str | None


class ReplicaHealth(msgspec.Struct, frozen=True, kw_only=True):
    """One read replica as the last monitor check saw it, with its own breaker and pool.

    ``state``: ``ok`` (reads may go there), ``lagging`` (beyond
    ``replica_max_lag``), ``down`` (no answer), ``not_standby`` (promoted,
    or not a standby), ``unknown`` (not compared with the primary yet).
    ``lag_seconds``: how long ago it last held everything the primary had.
    """

    name: str
    state: str
    lag_seconds: float | None
    replayed_lsn: int | None
    error: str | None
    reads: int
    fallbacks: int
    pool: PoolHealth
    breaker: BreakerHealth


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """What ``Database.health()`` reports; built even when the server is down."""

    ok: bool
    latency_ms: float | None
    server_version: str | None
    error: str | None
    pool: PoolHealth
    breaker: BreakerHealth
    queries: int
    retries: int
    slow_queries: int
    connect_failures: int
    failures: dict[str, int]
    replicas: list[ReplicaHealth] = msgspec.field(default_factory=list)


async def health_report(
    pool: ConnectionPool, breaker: CircuitBreaker, counters: Counters, *, timeout: float
) -> Health:
    """Ping the server through *pool* within *timeout*; report it all; never raise.

    The ping bypasses the breaker on purpose: health must tell whether the
    server answers now, even while the breaker is still open.
    """
    ok, latency, version, error = False, None, None, None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout), pool.connection() as conn:
            # Looked up here, not at import: importing vdata loads no SQL.
            version = str(await conn.fetchval(load()["health.get_server_version"].sql))
        latency = (time.perf_counter() - started) * 1000
        ok = True
    except Exception as exc:
        err = translate(exc)
        error = f"{type(err).__name__}: {err}"
    snap = breaker.snapshot()
    return Health(
        ok=ok,
        latency_ms=latency,
        server_version=version,
        error=error,
        pool=pool_health(pool),
        breaker=BreakerHealth(
            state=str(snap.state),
            consecutive_failures=snap.consecutive_failures,
            times_opened=snap.times_opened,
            last_failure_kind=snap.last_failure_kind,
        ),
        queries=counters.queries,
        retries=counters.retries,
        slow_queries=counters.slow_queries,
        connect_failures=counters.connect_failures,
        failures=dict(counters.failures),
    )


def pool_health(pool: ConnectionPool) -> PoolHealth:
    """Return *pool*'s size and use now (no server round trip)."""
    size, idle = pool.get_size(), pool.get_idle_size()
    return PoolHealth(
        size=size,
        min_size=pool.get_min_size(),
        max_size=pool.get_max_size(),
        idle=idle,
        in_use=size - idle,
    )
