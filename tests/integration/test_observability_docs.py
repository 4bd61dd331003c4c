"""docs/observability.md's sample scrape and span are what the exporters produce.

The samples are rendered by the real prometheus_client and OpenTelemetry
SDK from statement events with fixed durations, sent through the same
``db.observers.emit`` the engine calls (a Database whose pool never
connects: no server is needed, and the figures do not vary from run to
run). What real statements emit is proven by test_otel.py and
test_prometheus.py. ``VDATA_UPDATE_DOCS=1`` rewrites the page's blocks. It
lives here, not in tests/unit, so that CI's run with every extra
(``-m integration``) runs it for real.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "prometheus_client", reason="needs the prometheus extra: pip install 'vdata-pg[prometheus]'"
)
pytest.importorskip(
    "opentelemetry.sdk", reason="needs the otel extra: pip install 'vdata-pg[otel]'"
)

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from prometheus_client import CollectorRegistry, generate_latest

import vdata
from vdata.engine.database import Database
from vdata.engine.pool import ConnectionPool
from vdata.engine.transaction import Transaction
from vdata.exporters.otel import instrument
from vdata.exporters.prometheus import register
from vdata.queries import load

PAGE = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
GET = "users.get_user_by_id"
INSERT = "users.insert_user"


def sql(name: str) -> str:
    """The query's real text (placeholders only); exported only with query_text=True."""
    return load()[name].sql


async def _never_connects() -> Any:
    raise AssertionError("the sample's pool never connects")


def sample_db() -> Database[Transaction]:
    settings = vdata.Settings.build(
        dsn="postgresql://vdata_app@db.internal:5432/orders", pool_max_size=10
    )
    pool = ConnectionPool(
        _never_connects, min_size=0, max_size=10, reset_timeout=None, max_inactive=300.0
    )
    return Database(settings, pool, transaction_class=Transaction)


def emit_sample(db: Database[Transaction]) -> None:
    """The statements of the sample: reads, a retried read, a write and a conflict."""
    emit = db.observers.emit
    for seconds in (0.00042, 0.00061, 0.0009, 0.0031):
        emit(GET, "ok", seconds, 0.0, False, None, sql(GET))
    retried = vdata.TransientError("connection lost", sqlstate="57P01")
    emit(GET, "retried", 0.0004, 0.0, False, retried, sql(GET))
    emit(GET, "ok", 0.0007, 0.00031, False, None, sql(GET))
    emit(INSERT, "ok", 0.0012, 0.0, True, None, sql(INSERT))
    conflict = vdata.ConflictError("duplicate", sqlstate="23505")
    emit(INSERT, "error", 0.0009, 0.0, True, conflict, sql(INSERT))


def render_scrape() -> str:
    db = sample_db()
    registry = CollectorRegistry()
    register(db, registry=registry)
    emit_sample(db)
    return generate_latest(registry).decode()


def render_span() -> str:
    db = sample_db()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    instrument(db, tracer_provider=provider, meter_provider=MeterProvider())
    with provider.get_tracer("service").start_as_current_span("POST /users"):
        conflict = vdata.ConflictError("duplicate", sqlstate="23505")
        db.observers.emit(INSERT, "error", 0.0009, 0.0, True, conflict, sql(INSERT))
    [span] = [s for s in spans.get_finished_spans() if s.name == INSERT]
    shown: dict[str, Any] = json.loads(span.to_json())
    del shown["resource"]  # the service's, with the SDK's version in it
    # Ids and clock times differ every run: fixed stand-ins.
    shown["context"]["trace_id"] = "0x5b8aa5a2d2c872e8321cf37308d69df2"
    shown["context"]["span_id"] = "0x051581bf3cb55c13"
    shown["parent_id"] = "0x1d4c5f6a7b8c9d0e"
    shown["start_time"] = "2026-01-01T12:00:00.000000Z"
    shown["end_time"] = "2026-01-01T12:00:00.000900Z"
    provider.shutdown()
    return json.dumps(shown, indent=2)


def block(page: str, name: str) -> re.Match[str]:
    """Return the match of the fenced block after ``<!-- generated: name -->`` (group 1)."""
    found = re.search(rf"<!-- generated: {name} -->\n```[a-z]*\n(.*?)```", page, re.DOTALL)
    assert found is not None, f"docs/observability.md has no generated {name} block"
    return found


@pytest.mark.parametrize(("name", "render"), [("scrape", render_scrape), ("span", render_span)])
def test_the_page_shows_what_the_exporter_renders(name: str, render: Any) -> None:
    text = render().rstrip("\n") + "\n"
    page = PAGE.read_text(encoding="utf-8")
    found = block(page, name)
    shown = found.group(1)
    if os.environ.get("VDATA_UPDATE_DOCS") == "1" and shown != text:
        page = page[: found.start(1)] + text + page[found.end(1) :]
        PAGE.write_text(page, encoding="utf-8")
        shown = text
    assert shown == text, f"docs/observability.md: the {name} is stale (VDATA_UPDATE_DOCS=1)"
