"""OpenTelemetry for vdata: a span per statement attempt, and the database client metrics.

``pip install 'vdata-pg[otel]'``, then::

    from vdata.exporters.otel import instrument
    instrument(db)               # the global tracer and meter providers

Each statement attempt becomes a CLIENT span named after the query
(``users.get_user_by_id``), child of whatever span is current in the
calling task, with the database semantic-convention attributes
(``db.system.name``, ``db.namespace``, ``db.query.summary``,
``db.operation.name`` for a statement without ``WITH``, ``server.address``,
``server.port``, and on failure ``error.type`` and
``db.response.status_code``) plus ``vdata.outcome``,
``vdata.pool.wait`` and ``vdata.in_transaction``. The statement text
(with ``$n`` placeholders, never values) is added as ``db.query.text``
only with ``query_text=True``. No parameter value is ever recorded.

Metrics: the histogram ``db.client.operation.duration`` (seconds) by
query and outcome; the gauges ``db.client.connection.count`` (idle / used),
``db.client.connection.max`` and ``vdata.breaker.state`` (0 closed,
1 half-open, 2 open).
"""

from __future__ import annotations

__all__ = ["OpenTelemetryListener", "instrument"]

import re
import time
from collections.abc import Iterable
from typing import Any

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "vdata.exporters.otel needs OpenTelemetry: pip install 'vdata-pg[otel]'"
    ) from exc

from vdata._version import __version__
from vdata.dsn import parse_dsn
from vdata.engine.database import Database
from vdata.engine.observe import StatementEvent

# Upper bounds in seconds recommended by the semantic conventions for
# db.client.operation.duration.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
_BREAKER_STATE = {"closed": 0, "half_open": 1, "open": 2}
_FIRST_WORD = re.compile(r"^\s*(?:--[^\n]*\n\s*)*([A-Za-z]+)")


def operation_name(sql: str) -> str | None:
    """Return the statement's operation (``SELECT``, ``INSERT`` ...), or None.

    None for ``WITH ...``: a statement whose CTEs may write holds several
    operations, and the semantic conventions then want none named
    (``db.query.summary``, the query's name, still says what it is).
    """
    match = _FIRST_WORD.match(sql)
    word = match.group(1).upper() if match else None
    return None if word == "WITH" else word


def server_attributes(db: Database[Any]) -> dict[str, Any]:
    """Return the attributes every span and data point of *db* carries (no password)."""
    params = parse_dsn(db.settings.dsn).params if db.settings.dsn else {}
    attrs: dict[str, Any] = {"db.system.name": "postgresql"}
    if params.get("dbname"):
        attrs["db.namespace"] = params["dbname"]
    if params.get("host"):
        attrs["server.address"] = params["host"]
    port = params.get("port", "")
    if port.isdigit():
        attrs["server.port"] = int(port)
    return attrs


class OpenTelemetryListener:
    """A statement listener that records spans and metrics through OpenTelemetry."""

    def __init__(
        self,
        db: Database[Any],
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        query_text: bool = False,
    ) -> None:
        self._db = db
        self._query_text = query_text
        self._tracer = trace.get_tracer("vdata", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("vdata", __version__, meter_provider=meter_provider)
        self._base = server_attributes(db)
        self._pool_name = {"db.client.connection.pool.name": self._base.get("db.namespace", "")}
        self._operations: dict[str, str | None] = {}
        self._duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of one statement attempt, by query and outcome.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        meter.create_observable_gauge(
            "db.client.connection.count",
            callbacks=[self._connections],
            unit="{connection}",
            description="Open connections of the pool, by state (idle, used).",
        )
        meter.create_observable_gauge(
            "db.client.connection.max",
            callbacks=[self._max_connections],
            unit="{connection}",
            description="The most connections the pool may open.",
        )
        meter.create_observable_gauge(
            "vdata.breaker.state",
            callbacks=[self._breaker],
            description="The circuit breaker: 0 closed, 1 half-open, 2 open.",
        )

    def __call__(self, event: StatementEvent) -> None:
        """Record *event* as a span and a duration (the listener protocol)."""
        end = time.time_ns()
        query = event.query
        if query in self._operations:
            operation = self._operations[query]
        else:
            operation = self._operations[query] = operation_name(event.sql)
        point: dict[str, Any] = {
            **self._base,
            "db.query.summary": query,
            "vdata.outcome": event.outcome,
        }
        if operation is not None:
            point["db.operation.name"] = operation
        if event.error is not None:
            point["error.type"] = event.error
        if event.sqlstate is not None:
            point["db.response.status_code"] = event.sqlstate
        self._duration.record(event.duration, point)
        attrs = {
            **point,
            "vdata.pool.wait": event.pool_wait,
            "vdata.in_transaction": event.in_transaction,
        }
        if self._query_text:
            attrs["db.query.text"] = event.sql
        span = self._tracer.start_span(
            event.query,
            kind=SpanKind.CLIENT,
            start_time=end - int(event.duration * 1e9),
            attributes=attrs,
        )
        if event.error is not None:
            # The class only: a server message may quote a value.
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=end)

    def _connections(self, _options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        pool = self._db.pool_health()
        return [
            metrics.Observation(
                pool.idle, {**self._pool_name, "db.client.connection.state": "idle"}
            ),
            metrics.Observation(
                pool.in_use, {**self._pool_name, "db.client.connection.state": "used"}
            ),
        ]

    def _max_connections(self, _options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        return [metrics.Observation(self._db.pool_health().max_size, self._pool_name)]

    def _breaker(self, _options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        state = str(self._db.breaker.state)
        return [metrics.Observation(_BREAKER_STATE.get(state, -1), self._pool_name)]


def instrument(
    db: Database[Any],
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    query_text: bool = False,
) -> OpenTelemetryListener:
    """Add an :class:`OpenTelemetryListener` to *db* and return it.

    Without providers, OpenTelemetry's global ones are used (set by the
    service's own OpenTelemetry setup). Remove it with
    ``db.remove_statement_listener(listener)``.
    """
    listener = OpenTelemetryListener(
        db, tracer_provider=tracer_provider, meter_provider=meter_provider, query_text=query_text
    )
    db.add_statement_listener(listener)
    return listener
