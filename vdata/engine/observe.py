"""Statement events: what a listener learns about every named statement, and their dispatch.

A listener is any callable taking one :class:`StatementEvent`. It is called
synchronously, in the task that ran the statement, right after the
statement's outcome is known (so an OpenTelemetry listener sees the
caller's span as the current one). An event carries names, classes and
timings only: never a parameter value, never a row.

With no listener the hot path pays one attribute test per call
(``Observers.active``); an event is built only when someone listens.
"""

from __future__ import annotations

__all__ = ["Observers", "Outcome", "StatementEvent", "StatementListener"]

import logging
from collections.abc import Callable
from typing import Literal

import msgspec

log = logging.getLogger("vdata.observe")

Outcome = Literal["ok", "error", "retried", "refused"]


class StatementEvent(msgspec.Struct, frozen=True, gc=False):
    """One attempt at one named statement.

    - ``query``: the statement's name (``"users.get_user_by_id"``).
    - ``outcome``: ``"ok"``; ``"error"`` (the caller gets ``error``);
      ``"retried"`` (this attempt failed with ``error`` and another attempt
      follows); ``"refused"`` (the circuit breaker refused it: nothing was
      sent).
    - ``duration``: seconds from sending the statement to its outcome
      (0.0 when none was sent).
    - ``pool_wait``: seconds spent waiting for a pooled connection (0.0
      when one was free, and inside a transaction, whose connection is
      already held).
    - ``in_transaction``: True inside ``db.transaction()``.
    - ``error``: the vdata error class (``"ConflictError"``), None when ok.
    - ``sqlstate``: the server's SQLSTATE for that error, if it sent one.
    - ``sql``: the statement's text with ``$n`` placeholders: never values.
    """

    query: str
    outcome: Outcome
    duration: float
    pool_wait: float
    in_transaction: bool
    error: str | None
    sqlstate: str | None
    sql: str


StatementListener = Callable[[StatementEvent], object]


class Observers:
    """The statement listeners of one database; ``active`` is the hot path's one test.

    A listener that raises is logged (once per listener) and otherwise
    ignored: observing must never break a database call.
    """

    __slots__ = ("_broken", "_listeners", "active")

    def __init__(self) -> None:
        self._listeners: tuple[StatementListener, ...] = ()
        self._broken: set[int] = set()
        self.active = False

    def __len__(self) -> int:
        return len(self._listeners)

    def add(self, listener: StatementListener) -> None:
        """Call *listener* with every statement event from now on."""
        if not callable(listener):
            raise TypeError(f"a statement listener must be callable, not {type(listener).__name__}")
        self._listeners = (*self._listeners, listener)
        self.active = True

    def remove(self, listener: StatementListener) -> None:
        """Stop calling *listener*; raise ValueError if it was not added."""
        found = list(self._listeners)
        found.remove(listener)
        self._listeners = tuple(found)
        self.active = bool(found)

    def emit(
        self,
        query: str,
        outcome: Outcome,
        duration: float,
        pool_wait: float,
        in_transaction: bool,
        error: BaseException | None,
        sql: str,
    ) -> None:
        """Build one event and hand it to every listener."""
        if error is None:
            event = StatementEvent(
                query, outcome, duration, pool_wait, in_transaction, None, None, sql
            )
        else:
            event = StatementEvent(
                query,
                outcome,
                duration,
                pool_wait,
                in_transaction,
                type(error).__name__,
                getattr(error, "sqlstate", None),
                sql,
            )
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                if id(listener) not in self._broken:
                    self._broken.add(id(listener))
                    log.exception("statement listener %r failed (logged once)", listener)
