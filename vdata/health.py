"""Health reports and the counters behind them."""

from __future__ import annotations

__all__ = ["BreakerHealth", "Counters", "Health", "PoolHealth"]

from collections import Counter

import msgspec


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
