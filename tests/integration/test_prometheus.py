"""vdata.exporters.prometheus against the real prometheus_client: a registry scrape."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytest.importorskip(
    "prometheus_client",
    reason="needs the prometheus extra: pip install 'vdata-pg[prometheus]'",
)

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import vdata
from tests.integration._probe import q
from vdata.exporters.prometheus import register

pytestmark = pytest.mark.integration

SECRET = "s3cret-prom-value-5d0e"


@pytest.fixture
async def db(app_dsn: str) -> AsyncIterator[vdata.Database]:
    settings = vdata.Settings.build(pool_min_size=1, pool_max_size=3)
    async with await vdata.connect(app_dsn, settings=settings) as database:
        yield database


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape *registry* as Prometheus would and parse it back: (name, labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_scrape_has_per_query_histograms_counters_and_pool_and_breaker_gauges(
    db: vdata.Database,
) -> None:
    registry = CollectorRegistry()
    register(db, registry=registry, labels={"database": "main"})
    for _ in range(4):
        await db.fetchval(q("get_one"), ())
    await db.fetchrow(q("insert_note"), (SECRET,))
    with pytest.raises(vdata.ValidationError):
        await db.fetchrow(q("insert_note"), (SECRET * 10,))
    async with db.transaction():
        found = samples(registry)
    text = generate_latest(registry).decode()
    assert SECRET not in text

    def get(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted({"database": "main", **labels}.items())))]

    assert get("vdata_query_duration_seconds_count", query="probe.get_one") == 4
    assert get("vdata_query_duration_seconds_bucket", query="probe.get_one", le="+Inf") == 4
    assert get("vdata_query_duration_seconds_sum", query="probe.get_one") > 0
    assert get("vdata_query_duration_seconds_count", query="probe.insert_note") == 2
    assert get("vdata_query_attempts_total", query="probe.get_one", outcome="ok") == 4
    assert get("vdata_query_attempts_total", query="probe.get_one", outcome="retried") == 0
    assert get("vdata_query_attempts_total", query="probe.insert_note", outcome="error") == 1
    assert get("vdata_query_errors_total", query="probe.insert_note", error="ValidationError") == 1
    assert get("vdata_query_pool_wait_seconds_total", query="probe.get_one") >= 0
    # Scraped while a transaction held one connection.
    assert get("vdata_pool_connections", state="in_use") >= 1
    assert get("vdata_pool_max_connections") == 3
    assert get("vdata_breaker_state", state="closed") == 1
    assert get("vdata_breaker_state", state="open") == 0
    assert get("vdata_breaker_opened_total") == 0
    assert get("vdata_breaker_rejected_total") == 0
    assert get("vdata_breaker_consecutive_failures") == 0
    # Buckets are cumulative and end with every measured attempt.
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in found.items()
        if name == "vdata_query_duration_seconds_bucket" and ("query", "probe.get_one") in labels
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets) and buckets[-1][1] == 4


async def test_an_open_breaker_shows_in_the_scrape(db: vdata.Database) -> None:
    registry = CollectorRegistry()
    stats = vdata.QueryStats()
    db.add_statement_listener(stats)
    register(db, stats, registry=registry)
    for _ in range(db.settings.breaker_failure_threshold):
        db.breaker.before_call()
        db.breaker.on_failure(vdata.UnavailableError("down", reason="connect_failed"))
    with pytest.raises(vdata.UnavailableError):
        await db.fetchval(q("get_one"), ())
    found = samples(registry)
    assert found[("vdata_breaker_state", (("state", "open"),))] == 1
    assert found[("vdata_breaker_opened_total", ())] == 1
    assert found[("vdata_breaker_rejected_total", ())] == 1
    assert (
        found[("vdata_query_attempts_total", (("outcome", "refused"), ("query", "probe.get_one")))]
        == 1
    )
    assert found[("vdata_query_duration_seconds_count", (("query", "probe.get_one"),))] == 0


async def test_the_same_names_cannot_be_registered_twice(db: vdata.Database) -> None:
    registry = CollectorRegistry()
    register(db, registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        register(db, registry=registry)
    assert len(db.observers) == 1  # the refused collector's QueryStats was removed
    register(db, registry=registry, namespace="replica")  # another prefix is fine
    assert "replica_pool_max_connections 3.0" in generate_latest(registry).decode()
