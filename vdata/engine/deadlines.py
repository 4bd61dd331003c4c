"""command_timeout: one watchdog per Database instead of a timer per statement.

asyncpg enforces ``command_timeout`` with ``loop.call_later()`` on every
statement: a TimerHandle (with a copied context) made, pushed on the loop's
heap and cancelled again, about 8 us of client CPU per call on the 2-core
test machine (measured: a prepared ``fetchrow`` on a held connection, 70 ->
78 us), which was most of what vdata added to a call inside a transaction.

The client-side limit is a backstop: ``statement_timeout`` (sent as a session
setting, 30 s by default) already stops a slow statement on the server, so
``command_timeout`` (60 s) only fires when the server or the network stops
answering. Such a backstop needs no per-call precision. Here a statement
records its deadline in a dict (a clock read, a store, a delete: ~0.2 us) and
one task per Database wakes every ``min(1 s, command_timeout / 4)`` while any
statement is in flight, and ends itself when none is. A statement still
running past its deadline has its connection terminated: the caller's await
fails at once and is reported as ``QueryTimeoutError(reason="command_timeout")``,
as asyncpg's own timeout was. Terminating rather than cancelling is
deliberate: a server that did not answer for ``command_timeout`` would not
answer a cancel request either, and the pool replaces the connection.
"""

from __future__ import annotations

__all__ = ["Deadlines"]

import asyncio
import logging
import time
import weakref
from typing import Any

log = logging.getLogger("vdata.database")


class Deadlines:
    """Deadlines of the statements in flight, by connection, and their watchdog."""

    __slots__ = ("_due", "_expired", "_period", "_task", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._period = min(1.0, max(0.01, timeout / 4))
        self._due: dict[Any, float] = {}
        self._expired: weakref.WeakSet[Any] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None

    def start(self, conn: Any) -> None:
        """A statement starts on *conn*: it must answer within ``timeout``."""
        self._due[conn] = time.monotonic() + self.timeout
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._watch(), name="vdata command_timeout watchdog"
            )

    def stop(self, conn: Any) -> None:
        """The statement on *conn* ended (answered, failed or cancelled)."""
        self._due.pop(conn, None)

    def explain(self, conn: Any, exc: BaseException) -> BaseException:
        """Return what *exc*, raised by a statement on *conn*, means.

        If the watchdog terminated *conn*, the caller's error is the broken
        connection; the cause is the timeout, so a ``TimeoutError`` (caused
        by *exc*) is returned, which translates to ``QueryTimeoutError``.
        """
        if self._expired and conn in self._expired and isinstance(exc, Exception):
            self._expired.discard(conn)
            timeout = TimeoutError(f"no reply within command_timeout ({self.timeout:g} s)")
            timeout.__cause__ = exc
            return timeout
        return exc

    def in_flight(self) -> int:
        """Return how many statements are being watched now."""
        return len(self._due)

    def watching(self) -> bool:
        """Return whether the watchdog task is running."""
        return self._task is not None and not self._task.done()

    async def close(self) -> None:
        """Stop the watchdog (``Database.close``)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _watch(self) -> None:
        try:
            while self._due:
                await asyncio.sleep(self._period)
                now = time.monotonic()
                late = [conn for conn, due in self._due.items() if due <= now]
                for conn in late:
                    del self._due[conn]
                    self._expired.add(conn)
                    log.warning(
                        "no reply from the server within command_timeout (%g s); "
                        "terminating the connection",
                        self.timeout,
                    )
                    conn.terminate()
        finally:
            if self._task is asyncio.current_task():
                self._task = None
