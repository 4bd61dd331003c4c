"""The database side of a migration run: DSN, session, advisory lock, bookkeeping.

* the DSN, as psycopg parameters and as the URI yoyo wants;
* the session a run holds: ``lock_timeout`` and ``statement_timeout`` set,
  the run's advisory lock taken (one lock per database, whatever the
  source), the source's bookkeeping schema created;
* the search path: yoyo's tables are found through ``search_path`` set to the
  source's bookkeeping schema, while a migration's own statements run with
  the search path the DSN's session has (``use_search_path``), so that an
  unqualified ``CREATE TABLE widgets`` lands where the service looks for it;
* the rows of ``<schema>.checksum``, one per applied migration.
"""

from __future__ import annotations

__all__ = [
    "LOCK_KEY",
    "Held",
    "connect",
    "conninfo",
    "open_backend",
    "record",
    "recorded",
    "scrub",
    "session",
    "tracked_elsewhere",
    "unrecord",
    "use_search_path",
]

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg import sql
from yoyo.exceptions import BadMigration, MigrationConflict

from vdata.dsn import parse_dsn
from vdata.migrations.errors import MigrationError
from vdata.migrations.files import MigrationFiles
from vdata.migrations.sources import Source

# pg_advisory_lock key of a migration run: the first 8 bytes of
# sha256(b"vdata.migrations"), as a signed bigint. Advisory locks are per
# database, so runs against different databases never wait for each other;
# runs of different sources on one database take turns.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"vdata.migrations").digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class Held:
    """A locked run's session: its connection, yoyo's URI and the two search paths."""

    conn: psycopg.Connection[Any]
    uri: str
    search_path: str  # the DSN's own: a migration's statements run with it
    schema: str  # the source's bookkeeping schema: yoyo's and our tables


# -- connections ---------------------------------------------------------------


def conninfo(dsn: str) -> dict[str, Any]:
    """Return the DSN's parameters, read by vdata.dsn as connect() reads them.

    Raise ConfigurationError for a malformed DSN, MigrationError if it names
    no database.
    """
    params = parse_dsn(dsn).params
    if not params.get("dbname"):
        raise MigrationError("vdata migrate: the DSN names no database")
    return params


def _options(lock_timeout: float, statement_timeout: float) -> str:
    return (
        f"-c lock_timeout={round(lock_timeout * 1000)}"
        f" -c statement_timeout={round(statement_timeout * 1000)}"
    )


def _yoyo_uri(params: dict[str, Any], options: str, schema: str) -> str:
    # Every parameter goes in the query string, which yoyo hands to
    # psycopg.connect(**args): multi-host lists and sslmode survive that way.
    args = {k: str(v) for k, v in params.items() if k != "dbname"}
    args["options"] = f"{args['options']} {options}" if "options" in args else options
    args["schema"] = schema  # yoyo: SET search_path, so its tables land there
    return f"postgresql+psycopg:///{params['dbname']}?{urlencode(args)}"


def scrub(message: str, params: dict[str, Any]) -> str:
    """Return *message* with the DSN's password, if any, replaced by ``***``."""
    password = params.get("password")
    return message.replace(str(password), "***") if password else message


@contextmanager
def session(
    dsn: str, source: Source, *, lock_timeout: float, statement_timeout: float, lock_wait: float
) -> Iterator[Held]:
    """Connect, take the run's advisory lock, create *source*'s bookkeeping; yield the session."""
    params = conninfo(dsn)
    with connect(params) as conn:
        search_path = _search_path(conn)
        _set(conn, "lock_timeout", lock_wait)
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            raise MigrationError(
                f"vdata migrate: another migration run has held the lock on "
                f"{params['dbname']!r} for over {lock_wait:g} s (pid "
                f"{_lock_holder(conn)}); wait for it, or end that session"
            ) from None
        try:
            _set(conn, "lock_timeout", lock_timeout)
            _set(conn, "statement_timeout", statement_timeout)
            _ensure_bookkeeping(conn, source.schema)
            uri = _yoyo_uri(params, _options(lock_timeout, statement_timeout), source.schema)
            yield Held(conn, uri, search_path, source.schema)
        except psycopg.Error as exc:
            raise MigrationError(f"vdata migrate: {scrub(str(exc).strip(), params)}") from exc
        except (BadMigration, MigrationConflict) as exc:
            # e.g. a `-- depends:` naming no file: a mistake in migrations/.
            raise MigrationError(f"vdata migrate: bad migration: {exc}") from exc
        finally:
            # Closing the session would release the lock too; unlocking first
            # lets a waiting run go on without waiting for the disconnect.
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def connect(params: dict[str, Any]) -> psycopg.Connection[Any]:
    """Open an autocommit connection; a failure is a MigrationError without the password."""
    try:
        return psycopg.connect(autocommit=True, **params)
    except psycopg.Error as exc:
        raise MigrationError(
            f"vdata migrate: cannot connect to database {params['dbname']!r}: "
            f"{scrub(str(exc).strip(), params)}"
        ) from None


def _set(conn: psycopg.Connection[Any], setting: str, seconds: float) -> None:
    conn.execute("SELECT set_config(%s, %s, false)", (setting, f"{round(seconds * 1000)}ms"))


def _lock_holder(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND ((classid::bigint << 32) | objid::bigint) = %s",
        (LOCK_KEY,),
    ).fetchone()
    return str(row[0]) if row else "unknown"


def _search_path(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_setting('search_path')").fetchone()
    return str(row[0]) if row else ""


def _ensure_bookkeeping(conn: psycopg.Connection[Any], schema: str) -> None:
    with conn.transaction():
        # The schema name comes from sources.resolve(): [a-z][a-z0-9_]*.
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute("SELECT set_config('search_path', %s, true)", (schema,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS checksum ("
            " migration_id text PRIMARY KEY,"
            " apply_sha256 text NOT NULL,"
            " rollback_sha256 text NOT NULL,"
            " recorded_at timestamptz NOT NULL DEFAULT now())"
        )


@contextmanager
def open_backend(uri: str) -> Iterator[Any]:
    """Yield yoyo's backend for *uri* (from session()); close its connection after.

    The backend's ``search_path`` is the source's bookkeeping schema: yoyo's
    tables and ``checksum`` are named unqualified.
    """
    from yoyo import get_backend

    backend = get_backend(uri)
    try:
        yield backend
    finally:
        backend.connection.close()


def use_search_path(backend: Any, search_path: str) -> None:
    """Set the session's ``search_path`` on yoyo's *backend* (undone with its transaction)."""
    backend.execute("SELECT set_config('search_path', :path, false)", {"path": search_path})


# -- checksums -----------------------------------------------------------------


def tracked_elsewhere(
    conn: psycopg.Connection[Any], schema: str, apply_sums: list[str]
) -> str | None:
    """Return another source's bookkeeping schema that recorded one of *apply_sums*, or None.

    A folder applied under one source name and later run under another (its
    name follows the folder, and the folder moved) would apply everything a
    second time; a file with the same content in another source betrays it.
    """
    others = conn.execute(
        "SELECT n.nspname FROM pg_namespace AS n"
        " WHERE n.nspname LIKE 'vdata\\_migrations%%' AND n.nspname <> %s"
        " AND to_regclass(quote_ident(n.nspname) || '.checksum') IS NOT NULL"
        " ORDER BY n.nspname",
        (schema,),
    ).fetchall()
    for (other,) in others:
        with conn.transaction():
            conn.execute("SELECT set_config('search_path', %s, true)", (other,))
            row = conn.execute(
                "SELECT 1 FROM checksum WHERE apply_sha256 = ANY(%s) LIMIT 1", (apply_sums,)
            ).fetchone()
        if row:
            return str(other)
    return None


def recorded(cursor: Any) -> dict[str, tuple[str, str]]:
    """Return the recorded (apply, rollback) SHA-256 of each migration id."""
    cursor.execute("SELECT migration_id, apply_sha256, rollback_sha256 FROM checksum")
    return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def record(backend: Any, files: MigrationFiles) -> None:
    """Record the checksums of *files*, through yoyo's *backend*."""
    apply_sum, rollback_sum = files.checksums()
    backend.execute(
        "INSERT INTO checksum (migration_id, apply_sha256, rollback_sha256)"
        " VALUES (:id, :apply, :rollback)"
        " ON CONFLICT (migration_id) DO UPDATE SET apply_sha256 = EXCLUDED.apply_sha256,"
        " rollback_sha256 = EXCLUDED.rollback_sha256, recorded_at = now()",
        {"id": files.id, "apply": apply_sum, "rollback": rollback_sum},
    )


def unrecord(backend: Any, migration_id: str) -> None:
    """Forget the checksums of *migration_id*, through yoyo's *backend*."""
    backend.execute("DELETE FROM checksum WHERE migration_id = :id", {"id": migration_id})
