"""The throwaway servers this process started and has not stopped yet.

Each is stopped (and its folder removed) at interpreter exit, also when the
process is ended by SIGTERM, unless its ``stop()`` ran first.
"""

from __future__ import annotations

__all__ = ["forget", "track"]

import atexit
import contextlib
import signal
import threading
from typing import Protocol


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_live: set[_Stoppable] = set()
_live_lock = threading.Lock()


def track(server: _Stoppable) -> None:
    """Have *server* stopped and removed at interpreter exit unless ``stop()`` runs first."""
    with _live_lock:
        _live.add(server)
    _exit_on_sigterm()


def forget(server: _Stoppable) -> None:
    """*server* was stopped: nothing to do for it at exit."""
    with _live_lock:
        _live.discard(server)


def _exit_on_sigterm() -> None:
    """Make SIGTERM end the interpreter normally, so that ``atexit`` stops the servers.

    Python's default for SIGTERM kills the process on the spot, without
    ``atexit``: a test run stopped by a CI timeout or a cancelled job (both
    send SIGTERM) would leave its PostgreSQL servers running and their
    folders behind. Only the default disposition is replaced, and only from
    the main thread; a handler the application installed is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _cleanup_all() -> None:
    """Stop every server still alive (registered with ``atexit``)."""
    with _live_lock:
        servers = list(_live)
    for s in servers:
        with contextlib.suppress(Exception):
            s.stop()


atexit.register(_cleanup_all)
