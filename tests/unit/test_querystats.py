"""QueryStats: counts per outcome, the histogram's buckets, quantiles (pure logic)."""

from __future__ import annotations

import math

import pytest

import vdata
from vdata.engine.observe import Outcome
from vdata.engine.querystats import DEFAULT_BUCKETS


def event(
    query: str, outcome: Outcome, duration: float, error: str | None = None
) -> vdata.StatementEvent:
    return vdata.StatementEvent(query, outcome, duration, 0.001, False, error, None, "SELECT $1")


def test_each_outcome_is_counted_and_only_attempts_that_ran_are_timed() -> None:
    stats = vdata.QueryStats(buckets=(0.001, 0.01, 0.1))
    stats(event("a.q", "ok", 0.0005))
    stats(event("a.q", "ok", 0.001))  # on a bound: counted in that bucket (le)
    stats(event("a.q", "retried", 0.05, "TransientError"))
    stats(event("a.q", "error", 0.5, "QueryTimeoutError"))
    stats(event("a.q", "refused", 0.0, "UnavailableError"))
    stats(event("b.q", "error", 0.002, "ConflictError"))
    snap = stats.snapshot()
    assert list(snap) == ["a.q", "b.q"]
    a = snap["a.q"]
    assert (a.calls, a.ok, a.retried, a.refused) == (5, 2, 1, 1)
    assert a.errors == {"QueryTimeoutError": 1}
    assert a.counts == (2, 0, 1, 1) and a.measured == 4
    assert a.seconds_total == pytest.approx(0.5515)
    assert a.pool_wait_seconds_total == pytest.approx(0.004)
    assert a.mean() == pytest.approx(0.5515 / 4)
    assert snap["b.q"].counts == (0, 1, 0, 0)


def test_quantiles_are_the_upper_bound_of_their_bucket() -> None:
    stats = vdata.QueryStats(buckets=(0.001, 0.01, 0.1))
    for _ in range(98):
        stats(event("q", "ok", 0.0002))
    stats(event("q", "ok", 0.05))
    stats(event("q", "ok", 3.0))
    snap = stats.snapshot()["q"]
    assert snap.quantile(0.5) == 0.001
    assert snap.quantile(0.99) == 0.1
    assert snap.quantile(1.0) == math.inf
    with pytest.raises(ValueError):
        snap.quantile(1.5)


def test_an_unused_query_has_no_mean_or_quantile_and_reset_forgets() -> None:
    stats = vdata.QueryStats()
    stats(event("q", "refused", 0.0, "UnavailableError"))
    snap = stats.snapshot()["q"]
    assert snap.mean() is None and snap.quantile(0.5) is None
    assert stats.buckets == DEFAULT_BUCKETS
    stats.reset()
    assert stats.snapshot() == {}


@pytest.mark.parametrize("buckets", [(), (0.1, 0.1), (1.0, 0.5)])
def test_buckets_must_increase(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        vdata.QueryStats(buckets=buckets)
