"""CircuitBreaker transitions on a fake clock, trial slots under concurrency, listeners."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdata.engine.breaker import BreakerSnapshot, BreakerState, CircuitBreaker
from vdata.engine.failures import translate
from vdata.errors import ConflictError, NotFoundError, TransientError, UnavailableError

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outage() -> TransientError:
    return TransientError("connection refused", reason="connect_failed")


def make(
    clock: FakeClock, *, threshold: int = 3, rng: float = 0.0, **kwargs: int | float
) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=threshold,
        cooldown=10.0,
        jitter=0.5,
        clock=clock,
        rng=lambda: rng,
        **kwargs,  # type: ignore[arg-type]
    )


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.on_failure(outage())


def open_breaker(breaker: CircuitBreaker) -> None:
    fail(breaker, breaker.failure_threshold)
    assert breaker.state is OPEN


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker = make(FakeClock())
    fail(breaker, 2)
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.times_opened == 1
    assert breaker.consecutive_failures == 3
    assert breaker.last_failure_kind == "TransientError"


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = make(FakeClock())
    fail(breaker, 2)
    breaker.before_call()
    breaker.on_success()
    fail(breaker, 2)
    assert breaker.state is CLOSED
    assert breaker.consecutive_failures == 2
    assert breaker.failures == 4


def test_business_errors_never_open_and_count_as_success() -> None:
    breaker = make(FakeClock())
    for _ in range(100):
        breaker.before_call()
        breaker.on_failure(ConflictError("dup", sqlstate="23505"))
    assert breaker.state is CLOSED
    fail(breaker, 2)
    breaker.before_call()
    breaker.on_failure(NotFoundError("user", 1))
    assert breaker.consecutive_failures == 0
    assert breaker.failures == 2


def dropped() -> TransientError:
    # pg_terminate_backend of a connection in use: 57P01 on a live connection.
    return TransientError("admin shutdown", sqlstate="57P01")


def test_a_sweep_of_dropped_connections_never_opens_with_default_settings() -> None:
    # Every backend terminated once while 16 readers run on 10 connections:
    # each in-flight call reports a drop, each idle one is found closed.
    breaker = CircuitBreaker(clock=FakeClock())
    for _ in range(16):
        breaker.before_call()
        breaker.on_failure(dropped())
    for _ in range(16):
        breaker.before_call()
        breaker.on_failure(TransientError("closed", reason="connection_closed", not_sent=True))
    assert breaker.state is CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.inconclusive == 32


def test_drops_followed_by_refused_reconnects_open_as_fast_as_before() -> None:
    # The server really stopped: connections drop, then reconnecting is refused.
    breaker = make(FakeClock(), threshold=3)
    for _ in range(10):
        breaker.before_call()
        breaker.on_failure(dropped())
    assert breaker.state is CLOSED
    fail(breaker, 3)
    assert breaker.state is OPEN


def test_a_drop_neither_counts_nor_resets_the_count() -> None:
    breaker = make(FakeClock(), threshold=3)
    fail(breaker, 2)
    breaker.before_call()
    breaker.on_failure(dropped())
    assert breaker.consecutive_failures == 2
    fail(breaker)
    assert breaker.state is OPEN


def test_acquire_timeouts_never_open_the_breaker() -> None:
    breaker = make(FakeClock(), threshold=3)
    busy = translate(TimeoutError(), stage="acquire")
    for _ in range(10):
        breaker.before_call()
        breaker.on_failure(busy)
    assert breaker.state is CLOSED
    assert breaker.failures == 0


def test_an_inconclusive_trial_neither_closes_nor_reopens_and_frees_its_slot() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    clock.now += 20
    assert breaker.before_call() is True
    breaker.on_failure(translate(TimeoutError(), stage="acquire"))
    assert breaker.state is HALF_OPEN
    assert breaker.before_call() is True  # the slot was freed
    breaker.on_failure(dropped())
    assert breaker.state is HALF_OPEN
    breaker.before_call()
    breaker.on_success()
    assert breaker.state is CLOSED


def test_contention_does_not_open() -> None:
    breaker = make(FakeClock())
    for _ in range(10):
        breaker.before_call()
        breaker.on_failure(TransientError("serialization", sqlstate="40001"))
    assert breaker.state is CLOSED


def test_open_fails_fast_with_retry_after() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    clock.now += 4
    with pytest.raises(UnavailableError) as info:
        breaker.before_call()
    assert info.value.retry_after == pytest.approx(6.0)
    assert info.value.reason == "breaker_open"
    assert info.value.not_sent
    assert breaker.rejected == 1


@pytest.mark.parametrize(("rng", "cooldown"), [(0.0, 10.0), (0.5, 12.5), (0.999, 14.995)])
def test_cooldown_jitter_stays_within_bounds(rng: float, cooldown: float) -> None:
    clock = FakeClock()
    breaker = make(clock, rng=rng)
    open_breaker(breaker)
    assert breaker.snapshot().retry_after == pytest.approx(cooldown)
    clock.now += cooldown - 0.001
    with pytest.raises(UnavailableError):
        breaker.before_call()
    clock.now += 0.001
    assert breaker.before_call() is True
    assert breaker.state is HALF_OPEN


def test_half_open_success_closes() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    clock.now += 10
    assert breaker.before_call()
    breaker.on_success()
    assert breaker.state is CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.before_call() is False


def test_half_open_failure_reopens_with_a_new_cooldown() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    clock.now += 10
    breaker.before_call()
    breaker.on_failure(outage())
    assert breaker.state is OPEN
    assert breaker.times_opened == 2
    clock.now += 9.9
    with pytest.raises(UnavailableError):
        breaker.before_call()


def test_half_open_business_error_closes() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    clock.now += 10
    breaker.before_call()
    breaker.on_failure(ConflictError("dup"))
    assert breaker.state is CLOSED


def test_success_threshold_needs_several_trials() -> None:
    clock = FakeClock()
    breaker = make(clock, success_threshold=2)
    open_breaker(breaker)
    clock.now += 10
    breaker.before_call()
    breaker.on_success()
    assert breaker.state is HALF_OPEN
    breaker.before_call()
    breaker.on_success()
    assert breaker.state is CLOSED


def test_synchronous_use_holds_one_trial_slot() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    clock.now += 10
    breaker.before_call()
    with pytest.raises(UnavailableError) as info:
        breaker.before_call()
    assert info.value.retry_after is None


async def test_half_open_admits_at_most_max_calls_concurrently() -> None:
    clock = FakeClock()
    breaker = make(clock, half_open_max_calls=2)
    open_breaker(breaker)
    clock.now += 10
    gate = asyncio.Event()
    in_flight = 0
    peak = 0

    async def call() -> str:
        nonlocal in_flight, peak
        try:
            breaker.before_call()
        except UnavailableError:
            return "rejected"
        in_flight += 1
        peak = max(peak, in_flight)
        await gate.wait()
        in_flight -= 1
        breaker.on_success()
        return "admitted"

    tasks = [asyncio.create_task(call()) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert results.count("admitted") == 2
    assert results.count("rejected") == 8
    assert peak == 2
    assert breaker.state is CLOSED
    assert breaker.rejected == 8


async def test_cancelled_trial_releases_its_slot_without_counting() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    failures = breaker.failures
    clock.now += 10

    async def hung_trial() -> None:
        breaker.before_call()
        try:
            await asyncio.Event().wait()
        except BaseException as exc:
            breaker.on_failure(exc)
            raise

    task = asyncio.create_task(hung_trial())
    await asyncio.sleep(0)
    with pytest.raises(UnavailableError):
        breaker.before_call()  # the hung trial holds the only slot
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is HALF_OPEN
    assert breaker.failures == failures
    assert breaker.before_call() is True  # the slot is free again


async def test_slot_of_a_task_that_never_reported_is_reclaimed_when_it_ends() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    clock.now += 10

    async def forgetful() -> None:
        breaker.before_call()

    await asyncio.create_task(forgetful())
    assert breaker.before_call() is True


async def test_calls_from_before_opening_do_not_touch_trial_slots() -> None:
    clock = FakeClock()
    breaker = make(clock)
    admitted = asyncio.Event()
    finish = asyncio.Event()

    async def slow_old_call() -> None:
        breaker.before_call()  # admitted while closed
        admitted.set()
        await finish.wait()
        breaker.on_failure(outage())

    old = asyncio.create_task(slow_old_call())
    await admitted.wait()
    open_breaker(breaker)
    clock.now += 10

    async def trial() -> bool:
        return breaker.before_call()

    assert await asyncio.create_task(trial()) is True
    finish.set()
    await old  # its failure is stale: must neither re-open nor free the trial's slot
    assert breaker.state is HALF_OPEN
    assert breaker.times_opened == 1


def test_listeners_see_every_transition_and_a_broken_one_is_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    breaker = make(clock)
    seen: list[tuple[str, str]] = []
    breaker.add_listener(lambda old, new: seen.append((old.value, new.value)))

    def broken(old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("metrics down")

    breaker.add_listener(broken)
    with caplog.at_level(logging.INFO, logger="vdata.breaker"):
        open_breaker(breaker)
        clock.now += 10
        breaker.before_call()
        breaker.on_success()
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    levels = {(r.levelno, r.getMessage().split(":")[0].split(" after")[0]) for r in caplog.records}
    assert (logging.WARNING, "circuit breaker opened") in levels
    assert (logging.INFO, "circuit breaker closed") in levels
    assert any(r.levelno == logging.ERROR and "listener" in r.getMessage() for r in caplog.records)


def test_snapshot_reports_counters() -> None:
    clock = FakeClock()
    breaker = make(clock)
    breaker.before_call()
    breaker.on_success()
    open_breaker(breaker)
    with pytest.raises(UnavailableError):
        breaker.before_call()
    snap = breaker.snapshot()
    assert snap == BreakerSnapshot(
        state="open",
        calls=4,
        failures=3,
        inconclusive=0,
        consecutive_failures=3,
        times_opened=1,
        rejected=1,
        last_failure_kind="TransientError",
        retry_after=10.0,
    )
    assert make(clock).snapshot().retry_after is None


async def test_call_and_decorator_route_through_the_breaker() -> None:
    breaker = make(FakeClock(), threshold=2)

    @breaker
    async def refused() -> None:
        raise outage()

    async def ok(value: int) -> int:
        return value

    assert await breaker.call(ok, 7) == 7
    for _ in range(2):
        with pytest.raises(TransientError):
            await refused()
    assert breaker.state is OPEN
    with pytest.raises(UnavailableError):
        await breaker.call(ok, 1)


def test_keyboard_interrupt_is_not_a_failure() -> None:
    breaker = make(FakeClock(), threshold=1)
    breaker.before_call()
    breaker.on_failure(KeyboardInterrupt())
    assert breaker.state is CLOSED
    assert breaker.failures == 0


@given(st.lists(st.sampled_from(["outage", "conflict", "ok"]), max_size=40))
def test_opens_exactly_when_threshold_outages_are_consecutive(outcomes: list[str]) -> None:
    breaker = make(FakeClock(), threshold=3)
    run = 0
    for outcome in outcomes:
        breaker.before_call()
        if outcome == "outage":
            breaker.on_failure(outage())
            run += 1
        elif outcome == "conflict":
            breaker.on_failure(ConflictError("dup"))
            run = 0
        else:
            breaker.on_success()
            run = 0
        if run >= 3:
            assert breaker.state is OPEN
            return
        assert breaker.state is CLOSED


async def test_stale_success_does_not_close_a_half_open_breaker() -> None:
    clock = FakeClock()
    breaker = make(clock)
    breaker.before_call()  # a call admitted while closed, outside any task
    open_breaker(breaker)
    clock.now += 10

    async def trial() -> bool:
        return breaker.before_call()

    assert await asyncio.create_task(trial()) is True
    breaker.on_success()  # the old call finishes: it says nothing about now
    assert breaker.state is HALF_OPEN


# -- the growing cooldown: a failover is short, an outage is paced ----------------


def growing(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=2, cooldown=10.0, min_cooldown=0.25, jitter=0.0, clock=clock
    )


def trial_fails(breaker: CircuitBreaker, clock: FakeClock) -> float:
    """Wait out the cooldown, fail the trial; return the new cooldown."""
    retry_after = breaker.snapshot().retry_after
    assert retry_after is not None
    clock.now += retry_after
    assert breaker.before_call() is True
    breaker.on_failure(outage())
    assert breaker.state is OPEN
    after = breaker.snapshot().retry_after
    assert after is not None
    return after


def test_first_opening_waits_the_min_cooldown() -> None:
    clock = FakeClock()
    breaker = growing(clock)
    fail(breaker, 2)
    assert breaker.snapshot().retry_after == pytest.approx(0.25)
    clock.now += 0.249
    with pytest.raises(UnavailableError):
        breaker.before_call()
    clock.now += 0.001
    assert breaker.before_call() is True


def test_failed_trials_double_the_cooldown_up_to_the_cap() -> None:
    clock = FakeClock()
    breaker = growing(clock)
    fail(breaker, 2)
    waits = [trial_fails(breaker, clock) for _ in range(8)]
    assert waits == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0])


def test_a_real_outage_fails_fast_between_paced_trials() -> None:
    # 60 s of outage: every call between trials is refused at once; the
    # trials themselves are few (the cooldown grows to 10 s).
    clock = FakeClock()
    breaker = growing(clock)
    fail(breaker, 2)
    start, trials, refused = clock.now, 0, 0
    while clock.now - start < 60:
        clock.now += 0.01
        try:
            breaker.before_call()
        except UnavailableError:
            refused += 1
            continue
        trials += 1
        breaker.on_failure(outage())
    assert trials <= 11  # 0.25+0.5+1+2+4+8 = 15.75 s, then one per 10 s
    assert refused > 5000
    assert breaker.state is OPEN


def test_closing_starts_the_next_outage_at_the_min_cooldown() -> None:
    clock = FakeClock()
    breaker = growing(clock)
    fail(breaker, 2)
    for _ in range(4):
        trial_fails(breaker, clock)
    clock.now += 10
    breaker.before_call()
    breaker.on_success()
    assert breaker.state is CLOSED
    fail(breaker, 2)
    assert breaker.snapshot().retry_after == pytest.approx(0.25)


def test_failover_within_a_second_costs_under_two_seconds_of_breaker() -> None:
    # The server is back 1.2 s after the circuit opened: the first trial
    # after that passes at the next doubling step (0.25 + 0.5 + 1.0 = 1.75 s).
    clock = FakeClock()
    breaker = growing(clock)
    fail(breaker, 2)
    opened, back = clock.now, clock.now + 1.2
    while True:
        retry_after = breaker.snapshot().retry_after
        clock.now += retry_after or 0.0
        breaker.before_call()
        if clock.now >= back:
            breaker.on_success()
            break
        breaker.on_failure(outage())
    assert breaker.state is CLOSED
    assert clock.now - opened == pytest.approx(1.75)


def test_min_cooldown_none_keeps_one_fixed_cooldown() -> None:
    clock = FakeClock()
    breaker = make(clock)
    open_breaker(breaker)
    assert [trial_fails(breaker, clock) for _ in range(3)] == pytest.approx([10.0] * 3)
