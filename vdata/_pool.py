"""Creating the asyncpg pool: server settings, TLS, and a cheap release."""

from __future__ import annotations

__all__ = ["Release", "create_pool", "server_settings", "ssl_argument"]

import ssl
import weakref
from typing import Any

import asyncpg

from vdata.errors import UnavailableError, VdataError, translate
from vdata.settings import Settings


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


def server_settings(settings: Settings) -> dict[str, str]:
    """Return the session settings every pooled connection starts with."""
    return {
        "application_name": settings.application_name,
        "statement_timeout": _ms(settings.statement_timeout),
        "lock_timeout": _ms(settings.lock_timeout),
        "idle_in_transaction_session_timeout": _ms(settings.idle_in_transaction_session_timeout),
    }


def ssl_argument(settings: Settings) -> Any:
    """Return asyncpg's ``ssl=`` argument for *settings*, or None to follow the DSN."""
    mode = settings.sslmode
    if settings.require_ssl and mode in (None, "disable", "allow", "prefer"):
        # "prefer" would fall back to plain text; require_ssl forbids that.
        mode = "require"
    if mode is None:
        return None
    if mode in ("verify-ca", "verify-full"):
        context = ssl.create_default_context(cafile=settings.sslrootcert)
        context.check_hostname = mode == "verify-full"
        return context
    if mode == "require" and settings.sslrootcert:
        # libpq: require with a root certificate behaves as verify-ca.
        context = ssl.create_default_context(cafile=settings.sslrootcert)
        context.check_hostname = False
        return context
    return mode


def ssl_mode_name(settings: Settings) -> str:
    """Return the effective sslmode, as a person would write it."""
    if settings.require_ssl and settings.sslmode in (None, "disable", "allow", "prefer"):
        return "require (require_ssl)"
    return settings.sslmode or "from the DSN"


class Release:
    """Decide, per connection, whether its release needs asyncpg's reset query.

    asyncpg runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release, a round trip that costs 40-60% of a short
    pooled call. vdata skips it after a call that completed, which is safe
    because vdata never leaves session state on a pooled connection: it takes
    only transaction-scoped advisory locks (``pg_advisory_xact_lock``), opens
    cursors only inside transactions (closed at COMMIT/ROLLBACK), never
    LISTENs, and changes settings only with ``SET LOCAL`` or through the
    connection's startup parameters. asyncpg itself still rolls back a
    transaction left open, before this callback runs.

    A call that failed or was cancelled is different: asyncpg prepares a
    statement with Parse/Describe/Flush and no Sync, so a call cancelled
    there leaves the backend inside an implicit transaction, holding the
    locks of the parse until the next Sync. Such a connection is marked and
    gets the full reset (a simple query, which ends that state).
    """

    __slots__ = ("_dirty", "_timeout")

    def __init__(self, timeout: float | None = None) -> None:
        self._dirty: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()
        # The reset query's own limit (command_timeout): the pool has no
        # client-side default, see create_pool.
        self._timeout = timeout

    def mark(self, conn: asyncpg.Connection) -> None:
        """Give *conn* the full reset on its next release."""
        self._dirty.add(conn)

    async def give_back(self, pool: asyncpg.Pool, lease: Any, *, failed: bool = False) -> None:
        """Return *lease* (what ``pool.acquire()`` gave) to *pool*; *failed* marks it.

        ``Pool.release`` awaits the holder's release inside ``asyncio.shield()``,
        a new Task per release that costs three extra turns of the event loop
        (profiled: 5 loop iterations per pooled ``db.users.get`` instead of
        2; about 40 us of client CPU per call on the 2-core test machine).
        The shield only matters when the release can suspend, and so be
        cancelled half-way. It cannot when this callback has nothing to send
        (the connection is not marked), no transaction is open (no ROLLBACK),
        no cancellation is in flight, and asyncpg will not close the
        connection (max_queries, expired generation): then the holder's
        release runs to completion in one step and is awaited directly.
        """
        raw = getattr(lease, "_con", lease)
        if raw is None:
            pass  # closed meanwhile (idle_in_transaction timeout): asyncpg handles it
        elif failed:
            self.mark(raw)
        elif self._releases_inline(lease, raw):
            raw._on_release()
            await lease._holder.release(None)
            return
        await pool.release(lease)

    def _releases_inline(self, lease: Any, raw: Any) -> bool:
        # This reads asyncpg internals (checked against 0.32); if any is
        # missing, the answer is False and Pool.release runs as before.
        try:
            holder = lease._holder
            protocol = raw._protocol
            return bool(
                holder._pool._reset is self
                and raw._top_xact is None
                and not protocol.is_in_transaction()
                and not protocol._is_cancelling()
                and not raw.is_closed()
                and protocol.queries_count < holder._max_queries
                and holder._generation == holder._pool._generation
                and (not self._dirty or raw not in self._dirty)
            )
        except AttributeError:
            return False

    async def __call__(self, conn: asyncpg.Connection) -> None:
        if self._dirty and conn in self._dirty:
            self._dirty.discard(conn)
            await conn.execute(conn.get_reset_query(), timeout=self._timeout)


def _check_encrypted(settings: Settings) -> Any:
    async def init(conn: asyncpg.Connection) -> None:
        transport = getattr(conn, "_transport", None)
        encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
        if not encrypted:
            await conn.close()
            raise UnavailableError(
                "require_ssl is set but the connection is not encrypted; "
                "enable TLS on the server or unset VDATA_REQUIRE_SSL"
            )

    return init


async def create_pool(settings: Settings, release: Release) -> asyncpg.Pool:
    """Open the pool for *settings*; raise UnavailableError if no connection can be made."""
    try:
        pool = await asyncpg.create_pool(
            settings.dsn,
            min_size=min(settings.pool_min_size, settings.pool_max_size),
            max_size=settings.pool_max_size,
            timeout=settings.connect_timeout,
            # No per-statement timer: vdata's executors enforce
            # command_timeout with one watchdog (vdata/_deadline.py).
            command_timeout=None,
            max_inactive_connection_lifetime=settings.max_inactive_connection_lifetime,
            statement_cache_size=settings.statement_cache_size,
            server_settings=server_settings(settings),
            ssl=ssl_argument(settings),
            reset=release,
            init=_check_encrypted(settings) if settings.require_ssl else None,
        )
    except VdataError:
        raise
    except ConnectionError as exc:
        if "SSL" not in str(exc):  # asyncpg: 'server at "h:p" rejected SSL upgrade'
            raise UnavailableError(f"cannot connect to PostgreSQL: {translate(exc)}") from exc
        raise UnavailableError(
            "cannot connect to PostgreSQL: the server does not offer TLS, but "
            f"sslmode={ssl_mode_name(settings)} requires it (enable ssl on the server, "
            "or relax sslmode / require_ssl)"
        ) from exc
    except Exception as exc:
        error = translate(exc)
        if isinstance(error, UnavailableError):
            raise error from exc
        raise UnavailableError(f"cannot connect to PostgreSQL: {error}") from exc
    assert pool is not None
    return pool
