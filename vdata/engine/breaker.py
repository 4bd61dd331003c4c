"""CircuitBreaker: fail fast while the database is unavailable, with an injectable clock."""

from __future__ import annotations

__all__ = ["BreakerSnapshot", "BreakerState", "CircuitBreaker"]

import asyncio
import enum
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import msgspec

from vdata.engine.failures import is_availability_failure, is_inconclusive
from vdata.errors import UnavailableError

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("vdata.breaker")


class BreakerState(enum.StrEnum):
    """Where the breaker is: calls pass, fail fast, or a few trial calls pass."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The breaker's state and counters at one moment, for health and metrics."""

    state: str
    calls: int
    failures: int
    inconclusive: int
    consecutive_failures: int
    times_opened: int
    rejected: int
    last_failure_kind: str | None
    retry_after: float | None


# Module constants: looking a member up on an Enum class costs ~0.1 us, which
# would be most of the breaker's cost on the hot path.
_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN

Listener = Callable[[BreakerState, BreakerState], object]


class CircuitBreaker:
    """Open after *failure_threshold* consecutive availability failures; probe after a cooldown.

    The cooldown grows while the outage lasts: the first opening waits
    *min_cooldown*, each trial that fails doubles the wait, up to *cooldown*;
    closing starts over. So a short interruption (a failover that promotes a
    standby within a second or two) costs well under a second of waiting,
    while a real outage is probed at most once per *cooldown* and every call
    in between fails at once. *min_cooldown* None (or >= *cooldown*) keeps
    one fixed cooldown.

    What counts is evidence that the server cannot be used (*is_failure*,
    by default ``vdata.engine.failures.is_availability_failure``): a refused or
    timed-out connection attempt, no reply on a live connection. What
    proves nothing either way (*is_inconclusive*: a dropped connection that
    the next connect replaces, a busy pool, a cancellation) is neither
    counted nor taken as a success.

    Contract, per call: ``before_call()`` (raises UnavailableError while open,
    or while every half-open trial slot is taken), then exactly one of
    ``on_success()`` or ``on_failure(exc)``, from the same asyncio task. A
    half-open trial slot belongs to the task that took it, so calls that began
    before the circuit opened cannot release or spend a later trial's slot. A
    cancelled call (``on_failure(CancelledError())``) frees its slot without
    counting a failure. Any other error (a unique violation, a missing
    row) proves the server answered, so it counts as a success.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: float = 10.0,
        min_cooldown: float | None = None,
        jitter: float = 0.2,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        is_failure: Callable[[BaseException], bool] = is_availability_failure,
        is_inconclusive: Callable[[BaseException], bool] = is_inconclusive,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.min_cooldown = cooldown if min_cooldown is None else min(min_cooldown, cooldown)
        self._openings = 0  # openings since the circuit was last closed
        self.jitter = jitter
        self.half_open_max_calls = half_open_max_calls
        self.success_threshold = success_threshold
        self._is_failure = is_failure
        self._is_inconclusive = is_inconclusive
        self.inconclusive = 0
        self._clock = clock
        self._rng = rng
        self._listeners: list[Listener] = []
        self._state = _CLOSED
        self._open_until = 0.0
        self._trials: set[object] = set()  # tasks holding a half-open slot
        self._trial_successes = 0
        self.calls = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.times_opened = 0
        self.rejected = 0
        self.last_failure_kind: str | None = None

    @property
    def state(self) -> BreakerState:
        """Return the current state (open turns half-open only when a call arrives)."""
        return self._state

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(old_state, new_state)`` on every transition."""
        self._listeners.append(callback)

    def admits(self) -> bool:
        """Return True if ``before_call()`` would admit a call now (no state changes)."""
        if self._state is _CLOSED:
            return True
        if self._state is _OPEN:
            return self._clock() >= self._open_until
        return len(self._trials) < self.half_open_max_calls

    def before_call(self) -> bool:
        """Admit a call; return True for a half-open trial, raise UnavailableError if refused."""
        if self._state is _CLOSED:  # the hot path: no allocation
            self.calls += 1
            return False
        now = self._clock()
        if self._state is _OPEN:
            if now < self._open_until:
                self.rejected += 1
                raise UnavailableError(
                    "circuit breaker open: the database is unavailable",
                    retry_after=self._open_until - now,
                    reason="breaker_open",
                    not_sent=True,
                )
            self._trials.clear()
            self._trial_successes = 0
            self._transition(_HALF_OPEN)
        if len(self._trials) >= self.half_open_max_calls:
            # A task that finished without reporting cannot still be calling:
            # reclaim its slot rather than stay half-open forever.
            self._trials = {t for t in self._trials if not _done(t)}
            if len(self._trials) >= self.half_open_max_calls:
                self.rejected += 1
                raise UnavailableError(
                    "circuit breaker half-open: trial calls in progress",
                    retry_after=None,  # unknown: as soon as a trial reports
                    reason="breaker_open",
                    not_sent=True,
                )
        self._trials.add(_owner())
        self.calls += 1
        return True

    def on_success(self) -> None:
        """Record that the admitted call worked (or failed for a non-availability reason)."""
        if self._state is _CLOSED:
            self.consecutive_failures = 0
            return
        if not self._release():
            return  # began before the circuit opened: it proves nothing now
        self._trial_successes += 1
        if self._trial_successes >= self.success_threshold:
            self.consecutive_failures = 0
            self._transition(_CLOSED)

    def on_failure(self, exc: BaseException) -> None:
        """Record that the admitted call raised *exc*."""
        if not isinstance(exc, Exception):
            # CancelledError (a timeout around the call), KeyboardInterrupt:
            # nothing was learned about the server.
            self._release()
            return
        if not self._is_failure(exc):
            if self._is_inconclusive(exc):
                self.inconclusive += 1
                self._release()
            else:
                self.on_success()
            return
        self.failures += 1
        self.consecutive_failures += 1
        self.last_failure_kind = type(exc).__name__
        if self._state is _CLOSED:
            if self.consecutive_failures >= self.failure_threshold:
                self._open()
        elif self._release():
            self._open()  # a trial failed: the server is still not back

    def snapshot(self) -> BreakerSnapshot:
        """Return the state and counters as a Struct."""
        remaining = self._open_until - self._clock()
        return BreakerSnapshot(
            state=self._state.value,
            calls=self.calls,
            failures=self.failures,
            inconclusive=self.inconclusive,
            consecutive_failures=self.consecutive_failures,
            times_opened=self.times_opened,
            rejected=self.rejected,
            last_failure_kind=self.last_failure_kind,
            retry_after=remaining if self._state is _OPEN and remaining > 0 else None,
        )

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` through the breaker."""
        self.before_call()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self.on_failure(exc)
            raise
        self.on_success()
        return result

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate an async function so that every call goes through the breaker."""

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self.call(fn, *args, **kwargs)

        return guarded

    def _release(self) -> bool:
        # True if this task held a trial slot of the current half-open period.
        if self._state is not _HALF_OPEN:
            return False
        owner = _owner()
        if owner not in self._trials:
            return False
        self._trials.discard(owner)
        return True

    def next_cooldown(self) -> float:
        """Return the cooldown (before jitter) the next opening would wait."""
        if self.min_cooldown >= self.cooldown:
            return self.cooldown
        # 2**k overflows a float only past k = 1023; the cap is reached long before.
        return min(self.cooldown, self.min_cooldown * 2.0 ** min(self._openings, 64))

    def _open(self) -> None:
        # Jitter spreads the first probes of many service instances apart.
        wait = self.next_cooldown()
        self._openings += 1
        self._open_until = self._clock() + wait * (1 + self.jitter * self._rng())
        self.times_opened += 1
        self._trials.clear()
        self._transition(_OPEN)

    def _transition(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if new is _CLOSED:
            self._openings = 0  # the next outage starts with the shortest cooldown
        if new is _OPEN:
            log.warning(
                "circuit breaker opened after %d consecutive failures (last %s); cooldown %.1f s",
                self.consecutive_failures,
                self.last_failure_kind,
                self._open_until - self._clock(),
            )
        elif new is _CLOSED:
            log.info("circuit breaker closed: the database answers again")
        else:
            log.info("circuit breaker half-open: letting trial calls through")
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception:
                # A broken metrics hook must not break database calls.
                log.exception("circuit breaker listener %r failed", listener)


_NO_TASK = object()  # the owner of calls made outside any asyncio task


def _owner() -> object:
    try:
        return asyncio.current_task() or _NO_TASK
    except RuntimeError:  # no running event loop: synchronous use
        return _NO_TASK


def _done(owner: object) -> bool:
    return isinstance(owner, asyncio.Task) and owner.done()
