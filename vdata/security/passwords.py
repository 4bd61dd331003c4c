"""Argon2id password hashing in worker threads, bounded so the event loop never blocks."""

from __future__ import annotations

__all__ = [
    "DEFAULT_MEMORY_COST_KIB",
    "DEFAULT_PARALLELISM",
    "DEFAULT_TIME_COST",
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_LENGTH",
    "PasswordHasher",
    "check_password_policy",
    "hasher_for",
]

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vdata.errors import DatabaseError, ValidationError
from vdata.security.validation import utf8

if TYPE_CHECKING:
    from vdata.settings import Settings

_T = TypeVar("_T")

# RFC 9106's second recommended option ("if much less memory is available"):
# argon2id, t=3, m=64 MiB, p=4. It is above OWASP's minimum (m=19 MiB, t=2,
# p=1) on both memory and passes, it is argon2-cffi's own default profile, and
# it costs ~120 ms per hash on a 2-core test machine: slow for a guesser, still
# fine for a login. Settings carries the same three numbers.
DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_COST_KIB = 64 * 1024
DEFAULT_PARALLELISM = 4

MIN_PASSWORD_LENGTH = 8
# argon2 itself takes any length, but the cost of pre-hashing grows with it;
# a cap bounds what one request can make the server do (OWASP suggests <= 64
# characters minimum *support*; 1024 bytes is far above any real passphrase).
MAX_PASSWORD_BYTES = 1024

# A fixed input for verify_dummy(); its value does not matter, only that the
# dummy hash is made with the current parameters so the work is the same.
_MALFORMED = "stored password hash is malformed; reset the password"

_DUMMY_PASSWORD = "vdata-dummy-password-for-unknown-users"  # noqa: S105 (not a credential)


def check_password_policy(password: str, *, min_length: int = MIN_PASSWORD_LENGTH) -> None:
    """Raise ValidationError if *password* may not be set; the message never quotes it."""
    if not isinstance(password, str):
        raise ValidationError("password must be a string", field="password")
    if "\x00" in password:
        raise ValidationError("password must not contain a NUL character", field="password")
    if len(password) < min_length:
        raise ValidationError(
            f"password must be at least {min_length} characters long", field="password"
        )
    size = len(utf8("password", password))
    if size > MAX_PASSWORD_BYTES:
        raise ValidationError(
            f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8", field="password"
        )


def _verifiable(password: object) -> bool:
    # What verify() accepts as a candidate: a str within the byte cap. No
    # minimum length, so passwords set under an older, looser policy still
    # work. Checked without hashing, so the reject is fast whether or not the
    # user exists and reveals nothing about accounts.
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_BYTES:
        return False
    try:
        return len(utf8("password", password)) <= MAX_PASSWORD_BYTES
    except ValidationError:
        return False


class PasswordHasher:
    """argon2id hashing and verification that run in threads, a bounded number at once.

    Each hash holds ``memory_cost_kib`` of RAM while it runs, so at most
    ``max_concurrent`` run together (default: the CPU count); callers beyond
    that wait on the event loop, where they can still be cancelled.
    """

    __slots__ = (
        "_dummy_hash",
        "_dummy_lock",
        "_ph",
        "_semaphores",
        "max_concurrent",
        "memory_cost_kib",
        "parallelism",
        "time_cost",
    )

    def __init__(
        self,
        *,
        time_cost: int = DEFAULT_TIME_COST,
        memory_cost_kib: int = DEFAULT_MEMORY_COST_KIB,
        parallelism: int = DEFAULT_PARALLELISM,
        max_concurrent: int | None = None,
    ) -> None:
        if max_concurrent is None:
            max_concurrent = max(1, os.cpu_count() or 1)
        if time_cost < 1 or parallelism < 1 or max_concurrent < 1:
            raise ValueError("time_cost, parallelism and max_concurrent must be at least 1")
        if memory_cost_kib < 8 * parallelism:
            # argon2's own floor: 8 KiB per lane.
            raise ValueError("memory_cost_kib must be at least 8 * parallelism")
        self.time_cost = time_cost
        self.memory_cost_kib = memory_cost_kib
        self.parallelism = parallelism
        self.max_concurrent = max_concurrent
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # asyncio.Semaphore binds to the first loop that waits on it; one per
        # loop keeps a hasher usable from several loops (tests, worker loops).
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHasher:
        """Build a hasher from the ``argon2_*`` and ``hash_max_concurrent`` settings."""
        return cls(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
            max_concurrent=settings.hash_max_concurrent,
        )

    def __repr__(self) -> str:
        return (
            f"PasswordHasher(time_cost={self.time_cost}, memory_cost_kib={self.memory_cost_kib},"
            f" parallelism={self.parallelism}, max_concurrent={self.max_concurrent})"
        )

    async def hash(self, password: str) -> str:
        """Check *password* against the policy, then return its argon2id hash (PHC string)."""
        check_password_policy(password)
        return await self._run(self._ph.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Return whether *password* matches *password_hash*; False on any mismatch.

        Raise DatabaseError if the stored hash is not an argon2 hash (corrupt row).
        """
        if not isinstance(password_hash, str) or not password_hash.startswith("$argon2"):
            raise DatabaseError(_MALFORMED, reason="malformed_password_hash")
        if not _verifiable(password):
            return False
        return await self._run(self._verify_sync, password_hash, password)

    async def verify_dummy(self, password: str) -> bool:
        """Do the work of a real verify against a fixed hash, for unknown users; return False."""
        if _verifiable(password):
            await self._run(self._verify_dummy_sync, password)
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Return whether *password_hash* was made with other parameters than this hasher's."""
        try:
            return self._ph.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError, TypeError):
            raise DatabaseError(_MALFORMED, reason="malformed_password_hash") from None

    # The sync halves run in worker threads.

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._ph.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except InvalidHashError:
            raise DatabaseError(_MALFORMED, reason="malformed_password_hash") from None
        except VerificationError:
            # Decodable but inconsistent (e.g. a truncated digest): the stored
            # value is corrupt, which a caller must hear about, not a "wrong
            # password" that would hide it.
            raise DatabaseError(_MALFORMED, reason="malformed_password_hash") from None

    def _verify_dummy_sync(self, password: str) -> bool:
        if self._dummy_hash is None:
            with self._dummy_lock:
                if self._dummy_hash is None:
                    self._dummy_hash = self._ph.hash(_DUMMY_PASSWORD)
        try:
            return self._ph.verify(self._dummy_hash, password)
        except VerifyMismatchError:
            return False

    async def _run(self, fn: Callable[..., _T], *args: str) -> _T:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrent)
        await semaphore.acquire()
        try:
            # Hashes run in vdata's own pool of low-priority threads (see
            # _hash_executor); the semaphore bounds how many run at once.
            future = loop.run_in_executor(_hash_executor(), fn, *args)
        except BaseException:
            semaphore.release()
            raise

        def done(finished: asyncio.Future[_T]) -> None:
            # The slot is freed when the thread ends, not when the caller stops
            # waiting: a cancelled caller cannot stop a running hash, and its
            # memory is in use until the hash ends.
            semaphore.release()
            if not finished.cancelled():
                finished.exception()  # retrieved: a cancelled caller's error is not logged

        future.add_done_callback(done)
        return await asyncio.shield(future)


# How much nicer than the event loop a hashing thread runs (Linux nice units).
_HASH_NICENESS = 10
_EXECUTOR: concurrent.futures.ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _lower_priority() -> None:
    """Make the calling worker thread nicer than the event loop (Linux only).

    argon2 threads compete with the event loop for CPU: on a 2-core machine,
    32 logins hashing at once delayed the loop by 10-16 ms at p99 (vdata
    bench), although none of them holds the GIL. Lowering the priority of the
    hashing threads lets the loop run first and logins take no longer.
    Linux applies setpriority() on a thread id to that thread alone; other
    systems would read it as a process id, so they keep the default.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # a sandbox may refuse; hashing still works
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _HASH_NICENESS)


def _hash_executor() -> concurrent.futures.ThreadPoolExecutor:
    """Return the process-wide pool of hashing threads, made on first use."""
    global _EXECUTOR
    if _EXECUTOR is None:
        with _EXECUTOR_LOCK:
            if _EXECUTOR is None:
                # Each hasher's semaphore bounds its own concurrency; this
                # bounds all of them together, and keeps hashing off the
                # default executor that DNS lookups and to_thread() share.
                _EXECUTOR = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max(2, min(32, (os.cpu_count() or 1) * 2)),
                    thread_name_prefix="vdata-argon2",
                    initializer=_lower_priority,
                )
    return _EXECUTOR


_HASHERS: dict[tuple[int, int, int, int], PasswordHasher] = {}
_HASHERS_LOCK = threading.Lock()


def hasher_for(settings: Settings) -> PasswordHasher:
    """Return the shared hasher for *settings*' argon2 parameters (one per parameter set).

    Sharing matters: the concurrency bound and the dummy hash live on the
    hasher, so every repository of one Database must use the same one.
    """
    key = (
        settings.argon2_time_cost,
        settings.argon2_memory_cost_kib,
        settings.argon2_parallelism,
        settings.hash_max_concurrent,
    )
    hasher = _HASHERS.get(key)
    if hasher is None:
        with _HASHERS_LOCK:
            hasher = _HASHERS.get(key)
            if hasher is None:
                hasher = _HASHERS[key] = PasswordHasher.from_settings(settings)
    return hasher
