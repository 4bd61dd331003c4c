"""Buffered API-key usage: pooled verify() calls are counted here, written in batches."""

from __future__ import annotations

__all__ = ["USAGE_FLUSH_INTERVAL", "UsageBuffer"]

import asyncio
import logging
from uuid import UUID

from vdata.engine.repository import Executor
from vdata.errors import VdataError
from vdata.queries import load

_Q = load()

_RECORD = _Q.bind("api_keys.record_api_key_usage", int)

# Uses counted by a pooled verify() are written at most this long after the
# first of them, in one statement of at most _BATCH keys.
USAGE_FLUSH_INTERVAL = 1.0
_BATCH = 1000

log = logging.getLogger("vdata.api_keys")


class UsageBuffer:
    """Uses counted by pooled verify() calls, written in sorted batches.

    One per Database (``db.api_keys`` is created once). A timer flushes
    ``USAGE_FLUSH_INTERVAL`` after the first pending use; ``db.close()``
    flushes what is left. A failed batch is kept for the next flush when the
    failure proves it was not applied; otherwise (connection lost mid-call)
    it is dropped with a warning, since writing it again could count twice.
    """

    __slots__ = ("_db", "_lock", "_pending", "_timer")

    def __init__(self, db: Executor) -> None:
        self._db = db
        self._pending: dict[UUID, int] = {}
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        db.add_close_hook(self.close)

    def add(self, key_id: UUID) -> None:
        pending = self._pending
        pending[key_id] = pending.get(key_id, 0) + 1
        if self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(USAGE_FLUSH_INTERVAL)
        self._timer = None  # uses counted from now on start the next timer
        try:
            await self.flush()
        except VdataError as error:
            log.warning("API key usage not written: %s", error)

    async def flush(self) -> int:
        written = 0
        async with self._lock:  # batches never overlap, so none is lost or doubled
            while self._pending:
                ids = sorted(self._pending)[:_BATCH]  # one lock order: no deadlocks
                uses = [self._pending.pop(key_id) for key_id in ids]
                try:
                    args = _RECORD.arguments((), {"ids": ids, "uses": uses})
                    written += int(str(await self._db.fetchval(_RECORD, args)))
                except VdataError as error:
                    if _never_applied(error):
                        for key_id, n in zip(ids, uses, strict=True):
                            self._pending[key_id] = self._pending.get(key_id, 0) + n
                    else:
                        log.warning("API key usage of %d key(s) may be lost", len(ids))
                    raise
        return written

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.flush()


def _never_applied(error: VdataError) -> bool:
    # Never sent, or refused by the server (deadlock, timeout, permission):
    # the batch runs alone on a pooled connection, so a server error rolled
    # it back. Connection-class errors (08xxx, e.g. 08007 "transaction
    # resolution unknown") and client-side failures leave it in doubt.
    code = error.sqlstate
    return error.not_sent or (code is not None and not code.startswith("08"))
