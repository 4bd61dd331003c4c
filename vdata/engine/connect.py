"""Opening connections: session settings, TLS, and the pool (vdata/_connpool.py)."""

from __future__ import annotations

__all__ = ["connector", "create_pool", "server_settings", "settle_pooler", "ssl_argument"]

import ssl
from typing import Any

import asyncpg

from vdata.dsn import parse_dsn
from vdata.engine.failures import translate
from vdata.engine.pool import Connect, ConnectionPool
from vdata.engine.pooler import resolve_pooler, statement_cache_size
from vdata.errors import ConfigurationError, UnavailableError, VdataError
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


class Connection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's Connection with the reset vdata needs after a failed call.

    ``Connection.reset()`` (run by the pool after a failed or cancelled
    call) rolls back an open transaction, then sends this query. asyncpg's
    default, ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL``, undoes session state vdata never creates (see
    vdata/_connpool.py), and its ``RESET ALL`` does harm: behind PgBouncer
    it resets the parameters PgBouncer tracks for the client
    (``application_name``, ``TimeZone``) to the backend's startup values
    for the rest of the connection's life. What the reset must do is end
    whatever a cancelled extended-protocol exchange left behind (a Parse
    without a Sync holds an implicit transaction open): any simple-protocol
    statement does.
    """

    def get_reset_query(self) -> str:
        return "SELECT 1"


def connector(settings: Settings) -> Connect:
    """Return the coroutine function that opens one connection for *settings*.

    Raise ConfigurationError if there is no DSN or asyncpg cannot take it.
    """
    if not settings.dsn:
        raise ConfigurationError("no DSN: pass connect(dsn) or set VDATA_DSN", field="dsn")
    # Every DSN form libpq reads (key=value, postgres://, +driver), rewritten
    # as the one URI shape asyncpg reads (vdata/dsn.py).
    parsed = parse_dsn(settings.dsn)
    dsn = parsed.asyncpg_dsn()
    kwargs: dict[str, Any] = {
        "timeout": parsed.connect_timeout or settings.connect_timeout,
        # No per-statement timer: vdata's executors enforce command_timeout
        # with one watchdog (vdata/_deadline.py).
        "command_timeout": None,
        "statement_cache_size": statement_cache_size(settings),
        "server_settings": server_settings(settings),
        "ssl": ssl_argument(settings),
        "connection_class": Connection,
    }
    check = _check_encrypted(settings) if settings.require_ssl else None

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(dsn, **kwargs)
        if check is not None:
            await check(conn)
        return conn

    return connect


async def settle_pooler(settings: Settings) -> Settings:
    """Return *settings* with ``statement_cache_size`` decided (vdata.engine.pooler).

    With ``pooler="detect"`` one connection without a statement cache is
    opened and closed to look; if it cannot be opened, the safe cache (0)
    is used and the pool's own connection attempts report the failure.
    Raise ConfigurationError for an explicit cache behind transaction pooling.
    """
    probe = None
    if settings.pooler == "detect" and settings.dsn:
        try:
            probe = await connector(settings.replace(statement_cache_size=0))()
        except Exception:
            probe = None
    try:
        settled, _ = await resolve_pooler(settings, probe)
    except VdataError:
        raise
    except Exception as exc:  # the probe's one statement failed: say what the server said
        raise translate(exc, stage="connect") from exc
    finally:
        if probe is not None:
            try:
                await probe.close(timeout=2)
            except Exception:
                probe.terminate()
    return settled


async def create_pool(settings: Settings) -> ConnectionPool:
    """Open the pool for *settings*; raise UnavailableError if no connection can be made."""
    pool = ConnectionPool(
        connector(settings),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        reset_timeout=settings.command_timeout,
        max_inactive=settings.max_inactive_connection_lifetime,
    )
    try:
        await pool.open()
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
        if isinstance(error, (UnavailableError, ConfigurationError)):
            raise error from exc
        raise UnavailableError(
            f"cannot connect to PostgreSQL: {error}", sqlstate=error.sqlstate, reason=error.reason
        ) from exc
    return pool
