"""The transient and availability tables, proves_not_sent, and retry_call's budget."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator

import asyncpg
import pytest
from asyncpg.exceptions._base import PostgresMessageMeta

import vdata.engine.failures as failures
from vdata.engine.failures import (
    AVAILABILITY_SQLSTATES,
    DROPPED_SQLSTATES,
    is_availability_failure,
    is_inconclusive,
    is_transient,
    proves_not_sent,
    translate,
)
from vdata.engine.retry import retry_call
from vdata.errors import (
    ConflictError,
    NotFoundError,
    QueryTimeoutError,
    TransientError,
    UnavailableError,
    VdataError,
)

SECRET = "hunter2-s3cr3t"


def pg(code: str) -> VdataError:
    cls = PostgresMessageMeta.get_message_class_for_sqlstate(code)
    exc = cls(SECRET)
    exc.sqlstate = code
    return translate(exc)


# code -> (is_transient, is_availability_failure)
TABLE = {
    "40001": (True, False),  # contention: retry, but the server is fine
    "40P01": (True, False),
    "08000": (True, True),
    "08003": (True, False),  # a live connection dropped: the next connect decides
    "08006": (True, False),
    "08007": (False, False),  # commit outcome unknown: never retried
    "53300": (True, True),
    "57P01": (True, False),  # pg_terminate_backend: a dropped connection
    "57P02": (True, False),
    "57P03": (True, True),
    "57P05": (True, False),  # idle session reaped: reconnect, no outage
    "53100": (False, True),  # disk full: fail, and open the breaker
    "57P04": (False, True),
    "57014": (False, False),  # statement_timeout: the query, not the server
    "55P03": (False, False),
    "23505": (False, False),
    "23503": (False, False),
    "22P02": (False, False),
    "42501": (False, False),
    "42P01": (False, False),
}


@pytest.mark.parametrize(("code", "expected"), sorted(TABLE.items()))
def test_the_transient_and_availability_table(code: str, expected: tuple[bool, bool]) -> None:
    error = pg(code)
    assert (is_transient(error), is_availability_failure(error)) == expected


def test_transient_is_exactly_what_translates_to_transient_error() -> None:
    transient_codes = {c for c, cls in failures._BY_CODE.items() if cls is TransientError}
    assert transient_codes == {"40001", "40P01", "53300", "57P01", "57P02", "57P03", "57P05"}
    assert failures._BY_CLASS["08"] is TransientError


def test_availability_sqlstates_translate_to_outage_classes() -> None:
    for code in AVAILABILITY_SQLSTATES:
        assert isinstance(pg(code), (TransientError, UnavailableError)), code


@pytest.mark.parametrize(
    ("exc", "transient", "availability", "not_sent"),
    [
        (ConnectionRefusedError(), True, True, True),
        (ConnectionResetError(), True, False, False),  # dropped, not refused
        (translate(TimeoutError(), stage="connect"), True, True, True),
        (translate(TimeoutError(), stage="acquire"), False, False, True),
        (translate(TimeoutError()), False, True, False),  # command_timeout
        (asyncpg.InterfaceError("pool is closing"), False, False, True),
        (asyncpg.InterfaceError("connection is closed"), True, False, True),
        (UnavailableError(reason="breaker_open", not_sent=True), False, False, True),
        (TransientError("by hand"), True, True, False),
        (UnavailableError("by hand"), False, True, False),
        (QueryTimeoutError("by hand"), False, False, False),
        (ConflictError("dup"), False, False, False),
        (NotFoundError("user", 1), False, False, False),
        (ValueError(SECRET), False, False, False),
        (asyncio.CancelledError(), False, False, False),
        (KeyboardInterrupt(), False, False, False),
    ],
)
def test_predicates_on_non_server_errors(
    exc: BaseException, transient: bool, availability: bool, not_sent: bool
) -> None:
    assert is_transient(exc) is transient
    assert is_availability_failure(exc) is availability
    assert proves_not_sent(exc) is not_sent


@pytest.mark.parametrize("code", sorted(DROPPED_SQLSTATES))
def test_a_dropped_connection_is_inconclusive_but_the_same_code_at_connect_counts(
    code: str,
) -> None:
    cls = PostgresMessageMeta.get_message_class_for_sqlstate(code)
    exc = cls(SECRET)
    exc.sqlstate = code
    on_a_live_connection = translate(exc)
    assert not is_availability_failure(on_a_live_connection)
    assert is_inconclusive(on_a_live_connection)
    while_connecting = translate(exc, stage="connect")
    assert is_availability_failure(while_connecting)
    assert not is_inconclusive(while_connecting)


@pytest.mark.parametrize(
    ("exc", "inconclusive"),
    [
        (translate(TimeoutError(), stage="acquire"), True),  # a busy pool
        (asyncpg.InterfaceError("pool is closing"), True),
        (UnavailableError(reason="breaker_open", not_sent=True), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (ConnectionResetError(), True),
        (asyncio.CancelledError(), True),
        (ConnectionRefusedError(), False),  # evidence: the server is down
        (translate(TimeoutError(), stage="connect"), False),
        (translate(TimeoutError()), False),  # no reply on a live connection
        (ConflictError("dup"), False),  # evidence: the server answered
        (pg("40001"), False),
    ],
)
def test_what_proves_nothing_about_the_server(exc: BaseException, inconclusive: bool) -> None:
    assert is_inconclusive(exc) is inconclusive
    if inconclusive:
        assert not is_availability_failure(exc)


def test_a_raw_acquire_timeout_is_a_command_timeout_only_without_its_stage() -> None:
    # The executor must translate with the stage before the breaker sees it.
    assert translate(TimeoutError(), stage="acquire").reason == "acquire_timeout"
    assert translate(TimeoutError()).reason == "command_timeout"


def test_exhausted_retries_count_as_their_cause() -> None:
    outage = UnavailableError(reason="retries_exhausted")
    outage.__cause__ = ConnectionRefusedError()
    assert is_availability_failure(outage)
    contention = UnavailableError(reason="retries_exhausted")
    contention.__cause__ = pg("40001")
    assert not is_availability_failure(contention)
    assert not is_availability_failure(UnavailableError(reason="retries_exhausted"))


# -- retry_call -------------------------------------------------------------


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Record backoff's sleeps instead of sleeping."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)
        await real_sleep(0)

    # backoff sleeps with asyncio.sleep looked up at call time.
    monkeypatch.setattr("backoff._async.asyncio.sleep", fake_sleep)
    yield recorded


def failing(*errors_then: BaseException | str) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """Return fn raising each error in turn, then returning the string; and its call count."""
    calls = [0]
    outcomes = list(errors_then)

    async def fn() -> str:
        calls[0] += 1
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return fn, calls


async def test_success_calls_once_and_never_waits(waits: list[float]) -> None:
    fn, calls = failing("ok")
    assert await retry_call(fn, tries=3, max_time=10) == "ok"
    assert calls == [1]
    assert waits == []


async def test_transient_failures_are_retried_until_success(waits: list[float]) -> None:
    seen: list[tuple[str, int]] = []
    fn, calls = failing(pg("40001"), pg("40P01"), "ok")
    result = await retry_call(
        fn,
        tries=3,
        max_time=10,
        on_retry=lambda exc, attempt: seen.append((type(exc).__name__, attempt)),
    )
    assert result == "ok"
    assert calls == [3]
    assert seen == [("TransientError", 1), ("TransientError", 2)]
    assert len(waits) == 2


async def test_waits_are_exponential_with_full_jitter_and_capped(waits: list[float]) -> None:
    fn, _ = failing(*[pg("40001")] * 6, "ok")
    await retry_call(fn, tries=7, max_time=100, factor=0.1, max_wait=0.3, jitter=None)
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.3, 0.3])
    waits.clear()
    fn, _ = failing(*[pg("40001")] * 6, "ok")
    await retry_call(fn, tries=7, max_time=100, factor=0.1, max_wait=0.3)
    assert all(0 <= w <= cap for w, cap in zip(waits, [0.1, 0.2, 0.3, 0.3, 0.3, 0.3], strict=True))


async def test_business_errors_are_never_retried(waits: list[float]) -> None:
    conflict = ConflictError("dup", sqlstate="23505")
    fn, calls = failing(conflict, "ok")
    with pytest.raises(ConflictError) as info:
        await retry_call(fn, tries=5, max_time=10)
    assert info.value is conflict
    assert calls == [1]
    assert waits == []


async def test_non_retryable_error_after_a_retry_is_raised_as_is(waits: list[float]) -> None:
    fn, calls = failing(pg("40001"), NotFoundError("user", 1))
    with pytest.raises(NotFoundError):
        await retry_call(fn, tries=5, max_time=10)
    assert calls == [2]


async def test_exhausted_contention_reraises_the_last_transient_error(waits: list[float]) -> None:
    last = pg("40001")
    fn, calls = failing(pg("40001"), pg("40P01"), last)
    with pytest.raises(TransientError) as info:
        await retry_call(fn, tries=3, max_time=10)
    assert info.value is last
    assert calls == [3]


async def test_exhausted_outage_becomes_unavailable_with_the_cause(
    waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    refused = ConnectionRefusedError(111, SECRET)
    fn, calls = failing(pg("57P01"), pg("08006"), refused)
    with (
        caplog.at_level(logging.INFO, logger="vdata.retry"),
        pytest.raises(UnavailableError) as info,
    ):
        await retry_call(fn, tries=3, max_time=10, retry_on=lambda e: True, name="users.get")
    error = info.value
    assert calls == [3]
    assert error.reason == "retries_exhausted"
    assert error.__cause__ is refused
    assert "retries exhausted after 3 attempts" in str(error)
    assert error.query == "users.get"
    assert not error.not_sent  # 57P01 may have hit a running statement
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying users.get: attempt 1 failed with TransientError" in m for m in messages)
    assert any("retries exhausted for users.get after 3 attempts" in m for m in messages)
    assert all(SECRET not in m for m in messages)


async def test_exhaustion_proves_not_sent_only_if_every_attempt_did(waits: list[float]) -> None:
    fn, _ = failing(
        ConnectionRefusedError(),
        translate(TimeoutError(), stage="connect"),
        *[ConnectionRefusedError()],
    )
    with pytest.raises(UnavailableError) as info:
        await retry_call(fn, tries=3, max_time=10, retry_on=lambda e: True)
    assert proves_not_sent(info.value)


async def test_first_error_means_the_first_call_was_already_made(waits: list[float]) -> None:
    fn, calls = failing("ok")
    assert await retry_call(fn, tries=2, max_time=10, first_error=pg("40001")) == "ok"
    assert calls == [1]
    assert len(waits) == 1


async def test_first_error_with_no_tries_left_is_exhaustion(waits: list[float]) -> None:
    fn, calls = failing("ok")
    with pytest.raises(UnavailableError):
        await retry_call(fn, tries=0, max_time=10, first_error=translate(ConnectionRefusedError()))
    assert calls == [0]
    # Only dropped connections: no evidence of an outage, the last error as it is.
    dropped = pg("08006")
    with pytest.raises(TransientError) as lost:
        await retry_call(fn, tries=0, max_time=10, first_error=dropped)
    assert lost.value is dropped
    contention = pg("40001")
    with pytest.raises(TransientError) as info:
        await retry_call(fn, tries=0, max_time=10, first_error=contention)
    assert info.value is contention


async def test_first_error_that_is_not_retryable_is_raised(waits: list[float]) -> None:
    fn, calls = failing("ok")
    conflict = ConflictError("dup")
    with pytest.raises(ConflictError):
        await retry_call(fn, tries=3, max_time=10, first_error=conflict)
    assert calls == [0]


async def test_one_try_means_no_retry(waits: list[float]) -> None:
    fn, calls = failing(pg("40001"), "ok")
    with pytest.raises(TransientError):
        await retry_call(fn, tries=1, max_time=10)
    assert calls == [1]


async def test_max_time_bounds_the_retries(waits: list[float]) -> None:
    fn, calls = failing(*[translate(ConnectionRefusedError())] * 10, "ok")
    with pytest.raises(UnavailableError):
        await retry_call(fn, tries=10, max_time=0)
    assert calls == [1]
    assert waits == []


async def test_cancellation_is_never_retried(waits: list[float]) -> None:
    fn, calls = failing(asyncio.CancelledError(), "ok")
    with pytest.raises(asyncio.CancelledError):
        await retry_call(fn, tries=5, max_time=10, retry_on=lambda e: True)
    assert calls == [1]
