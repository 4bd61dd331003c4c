"""The one retry policy: backoff around a call, and re-running a whole unit of work.

Which failures a retry may absorb is decided by ``vdata.engine.failures``.
"""

from __future__ import annotations

__all__ = ["rerun", "retry_call"]

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import backoff
from backoff.types import Details

from vdata.engine.failures import is_availability_failure, is_transient, proves_not_sent
from vdata.errors import (
    TransientError,
    UnavailableError,
)

T = TypeVar("T")

log = logging.getLogger("vdata.retry")


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
