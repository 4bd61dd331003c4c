"""Is there a connection pooler between vdata and PostgreSQL? The statement cache depends on it.

asyncpg prepares each statement once per connection and caches it by name.
Behind PgBouncer in transaction mode a client connection runs each
transaction (and each statement outside one) on whichever backend is free,
where a statement prepared on another backend does not exist (26000), has a
name taken (42P05), or is another one. So there the cache must be 0.

How vdata tells: a backend reports its process id at login (BackendKeyData);
PgBouncer answers the login itself and reports a random one. One probe
connection at open compares it with ``pg_backend_pid()``. PgBouncer in
session mode looks the same, and is fine with a cache: ``pooler="session"``
says so and skips the probe.
"""

from __future__ import annotations

__all__ = ["DEFAULT_STATEMENT_CACHE", "behind_pooler", "resolve_pooler", "statement_cache_size"]

import logging

import asyncpg

from vdata.errors import ConfigurationError
from vdata.queries import load
from vdata.settings import Settings

log = logging.getLogger("vdata.pool")

DEFAULT_STATEMENT_CACHE = 100


def statement_cache_size(settings: Settings) -> int:
    """Return the cache size *settings* ask for, without probing (None: by ``pooler``)."""
    if settings.statement_cache_size is not None:
        return settings.statement_cache_size
    if settings.pooler in ("none", "session"):
        return DEFAULT_STATEMENT_CACHE
    return 0  # transaction pooling, or not probed yet: the safe choice


async def behind_pooler(conn: asyncpg.Connection) -> bool:
    """Return True if *conn*'s login was answered by something other than its backend."""
    q = load()["replication.get_backend_pid"]
    pid: int = conn.get_server_pid()
    return int(await conn.fetchval(q.sql)) != pid


def refuse_cache(settings: Settings, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"statement_cache_size={settings.statement_cache_size} cannot work here: {why}; "
        "in transaction pooling a statement asyncpg prepared on one backend runs on another "
        "(errors 26000 / 42P05, or the wrong statement). Leave statement_cache_size unset "
        "(vdata then uses 0) or set it to 0; if the pooler runs in session mode, set "
        "pooler='session' (VDATA_POOLER=session)",
        field="statement_cache_size",
    )


async def resolve_pooler(
    settings: Settings, probe: asyncpg.Connection | None
) -> tuple[Settings, bool | None]:
    """Return *settings* with the statement cache decided, and whether a pooler was seen.

    *probe* is a connection opened with no statement cache, for
    ``pooler="detect"`` (None: the server could not be reached; the safe
    cache, 0, is used). Raise ConfigurationError when a cache was asked for
    explicitly behind transaction pooling.
    """
    seen: bool | None = None
    mode = settings.pooler
    if mode == "detect" and probe is not None:
        seen = await behind_pooler(probe)
        mode = "transaction" if seen else "none"
    explicit = settings.statement_cache_size
    if mode == "transaction" and explicit:
        why = (
            "vdata is connected through a connection pooler (the backend pid reported at "
            "login is not the server's)"
            if seen
            else "pooler='transaction'"
        )
        raise refuse_cache(settings, why)
    if explicit is not None:
        return settings, seen
    # "detect" left unresolved (no probe): the safe cache.
    size = DEFAULT_STATEMENT_CACHE if mode in ("none", "session") else 0
    if seen:
        log.info("connected through a connection pooler: statement cache off")
    return settings.replace(statement_cache_size=size), seen
