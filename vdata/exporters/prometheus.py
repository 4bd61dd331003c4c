"""A Prometheus collector for vdata: per-query histograms and counters, pool and breaker gauges.

``pip install 'vdata-pg[prometheus]'``, then::

    from vdata.exporters.prometheus import register
    register(db)                 # on prometheus_client's default registry

The collector reads a :class:`vdata.QueryStats` (its own, added to *db* as a
statement listener, unless one is passed) and the pool and breaker at
scrape time; nothing is computed between scrapes beyond QueryStats'
counters. Labels are query names, outcomes and error classes: never a
parameter value.

Metrics (``vdata_`` prefix by default):

- ``query_duration_seconds`` histogram {query}: attempts that reached a connection;
- ``query_attempts_total`` counter {query, outcome}: ok, error, retried, refused;
- ``query_errors_total`` counter {query, error}: final errors by vdata error class;
- ``query_pool_wait_seconds_total`` counter {query};
- ``pool_connections`` gauge {state}: idle, in_use; ``pool_max_connections`` gauge;
- ``breaker_state`` gauge {state}: 1 for the current state (closed, half_open, open);
- ``breaker_consecutive_failures`` gauge; ``breaker_opened_total`` and
  ``breaker_rejected_total`` counters.
"""

from __future__ import annotations

__all__ = ["VdataCollector", "register"]

import math
from collections.abc import Iterator, Mapping
from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "vdata.exporters.prometheus needs prometheus-client: pip install 'vdata-pg[prometheus]'"
    ) from exc

from vdata.engine.breaker import BreakerState
from vdata.engine.database import Database
from vdata.engine.querystats import QueryStats

_OUTCOMES = ("ok", "error", "retried", "refused")


class VdataCollector(Collector):
    """Expose one database's per-query statistics, pool and breaker to Prometheus.

    *stats* defaults to a new QueryStats added to *db* as a listener.
    *labels* are constant labels on every sample (``{"database": "orders"}``
    for a service with several databases).
    """

    def __init__(
        self,
        db: Database[Any],
        stats: QueryStats | None = None,
        *,
        namespace: str = "vdata",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.owns_stats = stats is None
        if stats is None:
            stats = QueryStats()
            db.add_statement_listener(stats)
        self.db = db
        self.stats = stats
        self._prefix = f"{namespace}_" if namespace else ""
        self._const = dict(labels or {})

    def describe(self) -> list[Metric]:
        """Return the metric families (their names do not depend on the figures).

        A registry uses the names to refuse a second collector with the same
        ones: register each database once, or give each its own ``namespace``.
        """
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        """Build every metric family from the current figures."""
        names, values = list(self._const), list(self._const.values())
        p = self._prefix

        duration = HistogramMetricFamily(
            f"{p}query_duration_seconds",
            "Duration of statement attempts that reached a connection, by named query.",
            labels=[*names, "query"],
        )
        attempts = CounterMetricFamily(
            f"{p}query_attempts",
            "Statement attempts by named query and outcome (ok, error, retried, refused).",
            labels=[*names, "query", "outcome"],
        )
        errors = CounterMetricFamily(
            f"{p}query_errors",
            "Statement attempts that ended in an error, by named query and vdata error class.",
            labels=[*names, "query", "error"],
        )
        waits = CounterMetricFamily(
            f"{p}query_pool_wait_seconds",
            "Time spent waiting for a pooled connection, by named query.",
            labels=[*names, "query"],
        )
        for name, snap in self.stats.snapshot().items():
            cumulative, buckets = 0, []
            for bound, count in zip((*snap.buckets, math.inf), snap.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == math.inf else repr(bound), float(cumulative)))
            duration.add_metric([*values, name], buckets, snap.seconds_total)
            counts = {
                "ok": snap.ok,
                "error": sum(snap.errors.values()),
                "retried": snap.retried,
                "refused": snap.refused,
            }
            for outcome in _OUTCOMES:
                attempts.add_metric([*values, name, outcome], counts[outcome])
            for error, count in sorted(snap.errors.items()):
                errors.add_metric([*values, name, error], count)
            waits.add_metric([*values, name], snap.pool_wait_seconds_total)
        yield duration
        yield attempts
        yield errors
        yield waits

        pool = self.db.pool_health()
        connections = GaugeMetricFamily(
            f"{p}pool_connections",
            "Open connections of the pool, by state.",
            labels=[*names, "state"],
        )
        connections.add_metric([*values, "idle"], pool.idle)
        connections.add_metric([*values, "in_use"], pool.in_use)
        yield connections
        yield _gauge(
            f"{p}pool_max_connections",
            "The most connections the pool may open.",
            names,
            values,
            pool.max_size,
        )

        breaker = self.db.breaker.snapshot()
        state = GaugeMetricFamily(
            f"{p}breaker_state",
            "The circuit breaker's state: 1 for the current one.",
            labels=[*names, "state"],
        )
        for member in BreakerState:
            state.add_metric([*values, member.value], 1.0 if breaker.state == member.value else 0.0)
        yield state
        yield _gauge(
            f"{p}breaker_consecutive_failures",
            "Availability failures in a row, as the breaker counts them.",
            names,
            values,
            breaker.consecutive_failures,
        )
        opened = CounterMetricFamily(
            f"{p}breaker_opened", "Times the circuit breaker opened.", labels=names
        )
        opened.add_metric(values, breaker.times_opened)
        yield opened
        rejected = CounterMetricFamily(
            f"{p}breaker_rejected", "Calls the open breaker refused.", labels=names
        )
        rejected.add_metric(values, breaker.rejected)
        yield rejected


def _gauge(name: str, doc: str, names: list[str], values: list[str], value: float) -> Metric:
    gauge = GaugeMetricFamily(name, doc, labels=names)
    gauge.add_metric(values, value)
    return gauge


def register(
    db: Database[Any],
    stats: QueryStats | None = None,
    *,
    registry: CollectorRegistry = REGISTRY,
    namespace: str = "vdata",
    labels: Mapping[str, str] | None = None,
) -> VdataCollector:
    """Register a :class:`VdataCollector` for *db* on *registry*; return it."""
    collector = VdataCollector(db, stats, namespace=namespace, labels=labels)
    try:
        registry.register(collector)
    except ValueError:
        if collector.owns_stats:  # refused: stop feeding a collector nobody reads
            db.remove_statement_listener(collector.stats)
        raise
    return collector
