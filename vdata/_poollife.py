"""The end of a pooled connection's life: idle ones closed, and the pool's shutdown.

A mixin of ``vdata._connpool.ConnectionPool``, which holds the state; kept
apart so that the pool's hot path (taking and giving back) reads on its own.
"""

from __future__ import annotations

__all__ = ["PoolLifecycle"]

import asyncio
import time
from collections import deque

import asyncpg

from vdata.errors import UnavailableError


def pool_closed() -> UnavailableError:
    """The error of a call that finds the pool closed."""
    return UnavailableError("the database is closed", reason="pool_closed", not_sent=True)


class PoolLifecycle:
    """Closing idle connections above ``min_size``, and closing the pool."""

    # The pool's whole state (ConnectionPool sets it up).
    __slots__ = (
        "_all",
        "_connect",
        "_drained",
        "_free",
        "_idle_since",
        "_max_inactive",
        "_max_size",
        "_min_size",
        "_opening",
        "_reaper",
        "_reset_timeout",
        "_resets",
        "_waiters",
        "closed",
    )

    _all: set[asyncpg.Connection]
    _free: list[asyncpg.Connection]
    _idle_since: dict[asyncpg.Connection, float]
    _max_inactive: float
    _min_size: int
    _reaper: asyncio.Task[None] | None
    _resets: set[asyncio.Task[None]]
    _waiters: deque[asyncio.Future[asyncpg.Connection | None]]
    _drained: asyncio.Event | None
    closed: bool

    # -- idle connections ----------------------------------------------------

    async def _reap(self) -> None:
        """Close connections idle for ``max_inactive`` seconds, down to ``min_size``."""
        period = min(self._max_inactive / 2, 30.0)
        try:
            while not self.closed and len(self._all) > self._min_size:
                await asyncio.sleep(period)
                limit = time.monotonic() - self._max_inactive
                # The bottom of the LIFO list is the longest idle.
                while self._free and len(self._all) > self._min_size:
                    conn = self._free[0]
                    if self._idle_since.get(conn, limit) > limit:
                        break
                    del self._free[0]
                    self._all.discard(conn)
                    self._idle_since.pop(conn, None)
                    try:
                        await conn.close(timeout=5)
                    except Exception:
                        conn.terminate()
        finally:
            self._reaper = None

    # -- closing -------------------------------------------------------------

    def _check_drained(self) -> None:
        if self._drained is not None and len(self._free) >= len(self._all):
            self._drained.set()

    async def close(self, timeout: float) -> bool:
        """Wait up to *timeout* for connections in use, then close all.

        Returns False if some were still in use and were terminated.
        """
        self.closed = True
        error = pool_closed()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(error)
        if self._reaper is not None:
            self._reaper.cancel()
        self._drained = asyncio.Event()
        self._check_drained()
        clean = True
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            clean = False
        free = set(self._free)
        for conn in list(self._all):
            if conn not in free:
                conn.terminate()  # still in use: its caller gets a vdata error
        # Resets still running fail at once on their terminated connections.
        await asyncio.gather(*self._resets, return_exceptions=True)
        await asyncio.gather(*(self._close_one(c) for c in self._free))
        self._all.clear()
        self._free.clear()
        self._idle_since.clear()
        return clean

    def terminate(self) -> None:
        """Close every connection at once, without waiting."""
        self.closed = True
        for conn in self._all:
            conn.terminate()
        self._all.clear()
        self._free.clear()

    @staticmethod
    async def _close_one(conn: asyncpg.Connection) -> None:
        try:
            await conn.close(timeout=2)
        except Exception:
            conn.terminate()
