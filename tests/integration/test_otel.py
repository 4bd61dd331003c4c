"""vdata.exporters.otel against the real OpenTelemetry SDK: spans, metrics, no parameter value."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip(
    "opentelemetry.sdk", reason="needs the otel extra: pip install 'vdata-pg[otel]'"
)

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

import vdata
from tests.integration._probe import q
from vdata.exporters.otel import instrument, operation_name
from vdata.queries import load

pytestmark = pytest.mark.integration

SECRET = "s3cret-otel-value-91c2"


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points, from one collection."""
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def instrument(self, db: vdata.Database, **options: Any) -> None:
        instrument(
            db, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options
        )

    def dump(self) -> str:
        data = self.reader.get_metrics_data()
        spans = "".join(s.to_json() for s in self.spans.get_finished_spans())
        return spans + (data.to_json() if data is not None else "")


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest.fixture
async def db(app_dsn: str) -> AsyncIterator[vdata.Database]:
    settings = vdata.Settings.build(pool_min_size=1, pool_max_size=2)
    async with await vdata.connect(app_dsn, settings=settings) as database:
        yield database


async def test_each_statement_is_a_client_span_named_after_its_query(
    db: vdata.Database, telemetry: Telemetry, app_dsn: str
) -> None:
    instrument(
        db, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    tracer = telemetry.tracer_provider.get_tracer("service")
    with tracer.start_as_current_span("handle request") as request:
        await db.fetchrow(q("insert_note"), (SECRET,))
        with pytest.raises(vdata.ValidationError):
            await db.fetchrow(q("insert_note"), (SECRET * 10,))
        async with db.transaction() as tx:
            await tx.fetchval(q("get_one"), ())
    spans = [s for s in telemetry.spans.get_finished_spans() if s.name != "handle request"]
    assert [s.name for s in spans] == ["probe.insert_note", "probe.insert_note", "probe.get_one"]
    dbname = vdata.dsn.parse_dsn(app_dsn).dbname
    for span in spans:
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == request.get_span_context().span_id
        assert span.end_time is not None and span.start_time is not None
        assert span.end_time >= span.start_time
        attrs = dict(span.attributes or {})
        assert attrs["db.system.name"] == "postgresql"
        assert attrs["db.namespace"] == dbname
        assert attrs["server.address"] == "127.0.0.1"
        assert isinstance(attrs["server.port"], int)
        assert attrs["db.query.summary"] == span.name
        assert "db.query.text" not in attrs  # opt-in
    ok, failed, in_tx = (dict(s.attributes or {}) for s in spans)
    assert (ok["db.operation.name"], ok["vdata.outcome"], ok["vdata.in_transaction"]) == (
        "INSERT",
        "ok",
        False,
    )
    assert "error.type" not in ok and spans[0].status.status_code is StatusCode.UNSET
    assert (failed["error.type"], failed["db.response.status_code"]) == ("ValidationError", "23514")
    assert spans[1].status.status_code is StatusCode.ERROR
    assert spans[1].status.description == "ValidationError"
    assert (in_tx["db.operation.name"], in_tx["vdata.in_transaction"]) == ("SELECT", True)
    assert SECRET not in telemetry.dump()


async def test_the_duration_histogram_and_pool_gauges_are_recorded(
    db: vdata.Database, telemetry: Telemetry
) -> None:
    instrument(
        db, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    for _ in range(3):
        await db.fetchval(q("get_one"), ())
    await db.fetchrow(q("insert_note"), (SECRET,))
    with pytest.raises(vdata.ValidationError):
        await db.fetchrow(q("insert_note"), (SECRET * 10,))
    found = telemetry.metrics()
    points = {
        (p.attributes["db.query.summary"], p.attributes["vdata.outcome"]): p
        for p in found["db.client.operation.duration"]
    }
    assert set(points) == {
        ("probe.get_one", "ok"),
        ("probe.insert_note", "ok"),
        ("probe.insert_note", "error"),
    }
    get_one = points[("probe.get_one", "ok")]
    assert get_one.count == 3 and get_one.sum > 0
    assert tuple(get_one.explicit_bounds) == (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
    assert points[("probe.insert_note", "error")].attributes["error.type"] == "ValidationError"
    connections = {
        p.attributes["db.client.connection.state"]: p.value
        for p in found["db.client.connection.count"]
    }
    # A failed call's connection is reset in the background: it counts as used till then.
    assert set(connections) == {"idle", "used"}
    assert sum(connections.values()) == db.pool_health().size
    assert [p.value for p in found["db.client.connection.max"]] == [2]
    assert [p.value for p in found["vdata.breaker.state"]] == [0]
    assert SECRET not in telemetry.dump()


async def test_query_text_is_opt_in_and_has_placeholders_not_values(
    db: vdata.Database, telemetry: Telemetry
) -> None:
    instrument(
        db,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        query_text=True,
    )
    await db.fetchrow(q("insert_note"), (SECRET,))
    [span] = telemetry.spans.get_finished_spans()
    text = str((span.attributes or {})["db.query.text"])
    assert text == q("insert_note").sql and "$1" in text
    assert SECRET not in telemetry.dump()


def test_the_operation_is_named_only_for_a_statement_without_ctes() -> None:
    assert operation_name("-- a comment\nselect 1") == "SELECT"
    assert operation_name(q("insert_note").sql) == "INSERT"
    # vdata's writes record their audit rows in CTEs: several operations, none named.
    assert operation_name(load()["users.insert_user"].sql) is None
