"""Which failures are transient, which mean an outage, and the one retry policy."""

from __future__ import annotations

__all__ = [
    "AVAILABILITY_REASONS",
    "AVAILABILITY_SQLSTATES",
    "DROPPED_SQLSTATES",
    "INCONCLUSIVE_REASONS",
    "is_availability_failure",
    "is_inconclusive",
    "is_transient",
    "proves_not_sent",
    "rerun",
    "retry_call",
]

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import backoff
from backoff.types import Details

from vdata.engine.failures import translate
from vdata.errors import (
    QueryTimeoutError,
    TransientError,
    UnavailableError,
    VdataError,
)

T = TypeVar("T")

log = logging.getLogger("vdata.retry")

# The transient table is failures._BY_CODE / _BY_CLASS: a code is retryable
# exactly when it translates to TransientError (40001, 40P01, 08xxx except
# 08007/08P01, 53300, 57P01-57P03, 57P05), plus the connection failures
# without a SQLSTATE that translate() tags (refused, reset, connect timeout).
# Below is the second table: which of those failures mean "the server is not
# there" and so count for the circuit breaker. Contention (40001, 40P01) and
# a reaped idle session (57P05) prove the server is up, so they do not.
AVAILABILITY_SQLSTATES = frozenset(
    {
        "53000",  # insufficient_resources
        "53100",  # disk_full
        "53200",  # out_of_memory
        "53300",  # too_many_connections
        "53400",  # configuration_limit_exceeded
        "57000",  # operator_intervention
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "57P04",  # database_dropped
    }
)
_AVAILABILITY_CLASSES = frozenset({"08"})  # connection_exception, every code

# Failures without a SQLSTATE (see VdataError.reason). A client-side
# command_timeout counts: the server did not answer at all, which is what a
# black-holed network looks like. Server-side timeouts (57014, 55P03) do not:
# the server answered to say the query was slow.
AVAILABILITY_REASONS = frozenset({"command_timeout", "connect_failed", "connect_timeout"})

# An established connection that was dropped: its backend was terminated
# (pg_terminate_backend, a PgBouncer restart, a failover, a server going
# down) or its socket closed. On its own that says nothing about whether the
# server is up, because the fresh connection that replaces it decides: if
# connecting works, the server is there; if it is refused or times out,
# that attempt counts. So a sweep of every backend of a healthy server
# never opens the circuit, and a stopped server opens it on the first
# reconnect attempts. The same codes *while connecting* (``not_sent``) do
# count.
DROPPED_SQLSTATES = frozenset(
    {
        "08003",  # connection_does_not_exist
        "08006",  # connection_failure
        "57P01",  # admin_shutdown: pg_terminate_backend, or a shutdown
        "57P02",  # crash_shutdown: another backend crashed
    }
)
_DROPPED_REASONS = frozenset({"connection_closed", "connection_lost"})

# Failures that say nothing about the server either way: the pool was busy
# (back-pressure from the service's own load) or closing, the breaker
# itself refused. The breaker neither counts them nor takes them as a
# success.
INCONCLUSIVE_REASONS = frozenset({"acquire_timeout", "pool_closed", "breaker_open"})


def _as_vdata(exc: BaseException) -> VdataError:
    return exc if isinstance(exc, VdataError) else translate(exc)


def is_transient(exc: BaseException) -> bool:
    """Return True if a retry may absorb *exc* (whether a retry is *safe* is separate)."""
    if not isinstance(exc, Exception):  # cancellation is never retried
        return False
    return isinstance(_as_vdata(exc), TransientError)


def _dropped(error: VdataError) -> bool:
    # A connection that existed and was lost; not a failure to connect.
    if error.reason in _DROPPED_REASONS:
        return True
    return error.sqlstate in DROPPED_SQLSTATES and not error.not_sent


def is_inconclusive(exc: BaseException) -> bool:
    """Return True if *exc* proves neither that the server is down nor that it answered.

    A dropped connection (the next connection decides), a busy or closing
    pool, an open breaker, a cancellation. The breaker frees the call's
    trial slot and counts nothing.
    """
    if not isinstance(exc, Exception):
        return True
    error = _as_vdata(exc)
    if error.reason == "retries_exhausted":
        cause = error.__cause__
        return cause is None or is_inconclusive(cause)
    return error.reason in INCONCLUSIVE_REASONS or _dropped(error)


def is_availability_failure(exc: BaseException) -> bool:
    """Return True if *exc* means the server cannot be used: what opens the breaker.

    Evidence: a connection attempt refused, timed out or turned away
    (53300, 57P03 ...), a live connection that got no reply within
    command_timeout, the server out of resources. Not evidence: business
    errors, contention, server-side timeouts (the server answered), and
    what ``is_inconclusive`` names (a dropped connection, a busy pool).
    """
    if not isinstance(exc, Exception):
        return False
    error = _as_vdata(exc)
    if not isinstance(error, (TransientError, UnavailableError, QueryTimeoutError)):
        return False  # business errors and bugs prove the server answered
    if error.reason == "retries_exhausted":
        cause = error.__cause__
        return cause is not None and is_availability_failure(cause)
    if _dropped(error):
        return False
    if error.sqlstate is not None:
        code = error.sqlstate
        return code in AVAILABILITY_SQLSTATES or code[:2] in _AVAILABILITY_CLASSES
    if error.reason is not None:
        return error.reason in AVAILABILITY_REASONS
    # Raised by hand with no facts: trust the class, except for a timeout,
    # which is about the query unless tagged otherwise.
    return not isinstance(error, QueryTimeoutError)


def proves_not_sent(exc: BaseException) -> bool:
    """Return True if *exc* proves the statement never reached the server.

    Only then may a write be retried on its own: connecting or acquiring
    failed, the pool was closed, the breaker was open, or asyncpg refused a
    closed connection before writing to it.
    """
    if not isinstance(exc, Exception):
        return False
    return _as_vdata(exc).not_sent


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    tries: int,
    max_time: float,
    retry_on: Callable[[BaseException], bool] = is_transient,
    on_retry: Callable[[BaseException, int], object] | None = None,
    name: str | None = None,
    first_error: BaseException | None = None,
    factor: float = 0.05,
    max_wait: float = 2.0,
    jitter: Callable[[float], float] | None = backoff.full_jitter,
) -> T:
    """Call *fn* up to *tries* times while *retry_on* accepts its error; return its result.

    With *first_error*, the caller already made the first call and it failed:
    retry_call then makes up to *tries* further calls. Waits grow as
    ``factor * 2**n`` (capped at *max_wait*) with full jitter; *max_time*
    bounds the time spent retrying, counted from the first failure.

    An error *retry_on* rejects is raised as it is, at once. When the budget
    is spent, the last error is raised as it is, except an availability
    failure, which becomes ``UnavailableError("retries exhausted")`` with the
    last error as ``__cause__``: by then the caller should fail fast, not
    retry again. *on_retry(error, attempt)* runs before each wait.
    """
    if first_error is None:
        # The path of every successful call: one await, no backoff machinery.
        try:
            return await fn()
        except Exception as exc:
            if tries <= 1 or not retry_on(exc):
                raise
            first_error = exc
            tries -= 1
    elif not retry_on(first_error):
        raise first_error
    return await _retry(
        fn, first_error, tries, max_time, retry_on, on_retry, name, factor, max_wait, jitter
    )


async def _retry(
    fn: Callable[[], Awaitable[T]],
    first_error: BaseException,
    tries: int,
    max_time: float,
    retry_on: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException, int], object] | None,
    name: str | None,
    factor: float,
    max_wait: float,
    jitter: Callable[[float], float] | None,
) -> T:
    # The first failure is replayed as backoff's first attempt, so backoff
    # owns every wait, the tries count and the max_time clock.
    pending: list[BaseException] = [first_error]
    failed = 0
    all_not_sent = True

    async def attempt() -> T:
        nonlocal failed
        if pending:
            error = pending.pop()
        else:
            try:
                return await fn()
            except Exception as exc:
                error = exc
        failed += 1
        raise error

    def backed_off(details: Details) -> None:
        nonlocal all_not_sent
        error: BaseException = details["exception"]  # type: ignore[typeddict-item]
        all_not_sent = all_not_sent and proves_not_sent(error)
        # Names and classes only: parameters and server messages may be secret.
        log.info(
            "retrying %s: attempt %d failed with %s; waiting %.3f s",
            name or "call",
            failed,
            type(error).__name__,
            details["wait"],
        )
        if on_retry is not None:
            on_retry(error, failed)

    retrying = backoff.on_exception(
        backoff.expo,
        Exception,
        max_tries=tries + 1,  # + the replayed first failure
        max_time=max_time,
        giveup=lambda exc: not retry_on(exc),
        jitter=jitter,
        on_backoff=backed_off,
        raise_on_giveup=True,
        logger=None,  # backoff would log str(exc) and the call's arguments
        factor=factor,
        max_value=max_wait,
    )(attempt)
    try:
        return await retrying()
    except Exception as last:
        if not retry_on(last) or not is_availability_failure(last):
            raise
        all_not_sent = all_not_sent and proves_not_sent(last)
        log.warning(
            "retries exhausted for %s after %d attempts; last error %s",
            name or "call",
            failed,
            type(last).__name__,
        )
        raise UnavailableError(
            f"retries exhausted after {failed} attempts (last: {type(last).__name__})",
            query=name,
            reason="retries_exhausted",
            not_sent=all_not_sent,
        ) from last


# Serialization failure and deadlock: the whole unit of work may run again.
_RERUN = frozenset({"40001", "40P01"})


async def rerun(
    once: Callable[[], Awaitable[T]],
    *,
    retries: int,
    max_time: float,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """Run the unit of work *once*; run it again whole on 40001 or 40P01.

    ``Database.run_in_transaction`` passes one whole transaction as *once*:
    the retry happens only here, around the whole block, never around one
    statement of it.
    """
    try:
        return await once()
    except TransientError as error:
        if error.sqlstate not in _RERUN:
            raise
        first = error
    return await retry_call(
        once,
        tries=retries,
        max_time=max_time,
        retry_on=lambda e: isinstance(e, TransientError) and e.sqlstate in _RERUN,
        on_retry=on_retry,
        name="run_in_transaction",
        first_error=first,
    )
