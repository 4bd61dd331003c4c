"""Replica routing, read-your-writes and the pooler decision: the pure logic (no server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from vdata import ConfigurationError, Settings
from vdata.engine.breaker import CircuitBreaker
from vdata.engine.pool import ConnectionPool
from vdata.engine.pooler import resolve_pooler, statement_cache_size
from vdata.engine.replicas import Replica, Replicas, preference, reads
from vdata.errors import (
    ConflictError,
    DatabaseError,
    QueryTimeoutError,
    TransientError,
    UnavailableError,
)
from vdata.queries import Queries

# -- settings -------------------------------------------------------------------------


def test_replica_dsns_from_the_environment_white_space_or_json() -> None:
    urls = ["postgresql://svc@r1:5432/app", "postgresql://svc@r2:5433/app"]
    spaced = Settings.from_env({"VDATA_REPLICA_DSNS": "  ".join(urls)})
    listed = Settings.from_env({"VDATA_REPLICA_DSNS": msgspec.json.encode(urls).decode()})
    assert spaced.replica_dsns == listed.replica_dsns == tuple(urls)
    assert Settings().replica_dsns == ()


def test_a_bad_replica_dsn_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as bad:
        Settings.from_env({"VDATA_REPLICA_DSNS": "postgresql://svc@r1:notaport/app"})
    assert "VDATA_REPLICA_DSNS" in str(bad.value)
    with pytest.raises(ConfigurationError) as not_json:
        Settings.from_env({"VDATA_REPLICA_DSNS": "[not json"})
    assert "VDATA_REPLICA_DSNS" in str(not_json.value)


def test_pooler_setting_is_checked() -> None:
    assert Settings.from_env({"VDATA_POOLER": "session"}).pooler == "session"
    with pytest.raises(ConfigurationError) as bad:
        Settings.from_env({"VDATA_POOLER": "sometimes"})
    assert "VDATA_POOLER" in str(bad.value) and "transaction" in str(bad.value)


# -- the statement cache without a probe ----------------------------------------------


@pytest.mark.parametrize(
    ("pooler", "explicit", "expected"),
    [
        ("none", None, 100),
        ("session", None, 100),
        ("transaction", None, 0),
        ("detect", None, 0),  # not probed (server unreachable): the safe choice
        ("session", 250, 250),
        ("none", 0, 0),
        ("transaction", 0, 0),
    ],
)
async def test_statement_cache_without_a_probe(
    pooler: str, explicit: int | None, expected: int
) -> None:
    settings = Settings.build(pooler=pooler, statement_cache_size=explicit)
    settled, seen = await resolve_pooler(settings, None)
    assert settled.statement_cache_size == expected
    assert statement_cache_size(settled) == expected
    assert seen is None


async def test_an_explicit_cache_under_transaction_pooling_is_refused() -> None:
    with pytest.raises(ConfigurationError) as refused:
        await resolve_pooler(Settings.build(pooler="transaction", statement_cache_size=100), None)
    message = str(refused.value)
    assert "statement_cache_size=100" in message and "pooler='session'" in message


# -- declaring a lag-tolerant query ---------------------------------------------------


class Thing(msgspec.Struct):
    id: int


def queries(tmp_path: Path) -> Queries:
    folder = tmp_path / "sql" / "things"
    folder.mkdir(parents=True)
    (folder / "things.sql").write_text(
        "-- name: list_things()\n-- Every thing.\nSELECT 1 AS id;\n\n"
        "-- name: add_thing(id)^\n-- Add one.\nINSERT INTO t (id) VALUES (:id) RETURNING id;\n"
    )
    return Queries(tmp_path / "sql")


def test_bind_declares_lag_tolerance_for_reads_only(tmp_path: Path) -> None:
    q = queries(tmp_path)
    listed = q.bind("things.list_things", Thing, lag_tolerant=True)
    assert listed.lag_tolerant and not q["things.list_things"].lag_tolerant
    assert q.bind("things.list_things", Thing, lag_tolerant=True) is listed
    with pytest.raises(ValueError, match="lag_tolerant"):
        q.bind("things.list_things", Thing)  # the same query, declared otherwise
    with pytest.raises(ValueError, match="writes"):
        q.bind("things.add_thing", Thing, lag_tolerant=True)


# -- what the caller asks for -----------------------------------------------------------


async def test_reads_context_is_per_task_and_nests() -> None:
    assert preference() is None
    with reads("tolerant"):
        assert preference() == "tolerant"
        with reads("fresh"):
            assert preference() == "fresh"
        assert preference() == "tolerant"

        async def other_task() -> object:
            with reads("fresh"):
                await asyncio.sleep(0)
                return preference()

        assert await asyncio.create_task(other_task()) == "fresh"
        assert preference() == "tolerant"  # the other task's choice did not leak here
    assert preference() is None
    with pytest.raises(ValueError), reads("stale"):  # type: ignore[arg-type]
        pass


# -- picking a replica -------------------------------------------------------------------


async def _no_connection() -> object:
    raise AssertionError("routing must not connect")


def replica(name: str, *, state: str = "ok", caught_up_at: float = 10.0) -> Replica:
    pool = ConnectionPool(
        _no_connection,
        min_size=0,
        max_size=1,
        reset_timeout=None,
        max_inactive=0,
    )
    r = Replica(name, pool, CircuitBreaker(failure_threshold=1, cooldown=10.0))
    r.state = state
    r.caught_up_at = caught_up_at
    return r


def routing(*members: Replica) -> Replicas:
    primary = ConnectionPool(
        _no_connection,
        min_size=0,
        max_size=1,
        reset_timeout=None,
        max_inactive=0,
    )
    return Replicas(Settings(), primary, members)


def test_pick_round_robins_over_eligible_replicas() -> None:
    a, b = replica("a:1"), replica("b:2")
    r = routing(a, b)
    assert [r.pick(float("-inf")) for _ in range(4)] == [a, b, a, b]


def test_pick_skips_lagging_down_and_promoted_replicas() -> None:
    ok = replica("ok:1")
    r = routing(replica("lag:1", state="lagging"), replica("down:1", state="down"), ok)
    r.replicas.append(replica("promoted:1", state="not_standby"))
    assert {r.pick(float("-inf")) for _ in range(5)} == {ok}
    ok.state = "lagging"
    assert r.pick(float("-inf")) is None


def test_pick_honours_read_your_writes() -> None:
    # Caught up with a primary sample taken at t=10: holds writes that ended before.
    behind, ahead = replica("behind:1", caught_up_at=10.0), replica("ahead:1", caught_up_at=12.0)
    r = routing(behind, ahead)
    assert r.pick(9.0) in (behind, ahead)
    assert {r.pick(11.0) for _ in range(3)} == {ahead}
    assert r.pick(12.5) is None  # nobody has the last write yet: the primary


def test_pick_skips_a_replica_whose_own_breaker_is_open() -> None:
    broken, fine = replica("broken:1"), replica("fine:1")
    broken.breaker.before_call()
    broken.breaker.on_failure(TransientError("refused", reason="connect_failed"))
    assert broken.breaker.state == "open"
    r = routing(broken, fine)
    assert {r.pick(float("-inf")) for _ in range(3)} == {fine}


def test_a_replica_whose_breaker_cooled_down_gets_a_trial_read() -> None:
    clock = [100.0]
    broken = replica("broken:1")
    broken.breaker = CircuitBreaker(
        failure_threshold=1, cooldown=10.0, min_cooldown=0.25, jitter=0.0, clock=lambda: clock[0]
    )
    broken.breaker.before_call()
    broken.breaker.on_failure(TransientError("refused", reason="connect_failed"))
    r = routing(broken)
    assert r.pick(float("-inf")) is None
    clock[0] += 0.25
    assert r.pick(float("-inf")) is broken  # the read is the trial call
    assert broken.breaker.before_call() is True
    assert r.pick(float("-inf")) is None  # the one trial slot is taken
    broken.breaker.on_success()
    assert r.pick(float("-inf")) is broken


@pytest.mark.parametrize(
    ("error", "falls_back"),
    [
        (TransientError("refused", reason="connect_failed"), True),
        (UnavailableError("open", reason="breaker_open"), True),
        (TransientError("recovery conflict", sqlstate="40001"), True),
        (QueryTimeoutError("no reply", reason="command_timeout"), True),
        (DatabaseError("read-only transaction", sqlstate="25006"), True),
        (ConflictError("dup", sqlstate="23505"), False),
        (DatabaseError("syntax", sqlstate="42601"), False),
    ],
)
def test_which_replica_failures_run_again_on_the_primary(
    error: Exception, falls_back: bool
) -> None:
    assert Replicas.falls_back(error) is falls_back  # type: ignore[arg-type]
