"""The database side of a migration run: DSN, session, advisory lock, bookkeeping.

* the DSN, as psycopg parameters and as the URI yoyo wants;
* the session a run holds: ``lock_timeout`` and ``statement_timeout`` set,
  the run's advisory lock taken, the bookkeeping created;
* the rows of ``vdata_migrations.checksum``, one per applied migration.
"""

from __future__ import annotations

__all__ = [
    "LOCK_KEY",
    "SCHEMA",
    "connect",
    "conninfo",
    "open_backend",
    "record",
    "recorded",
    "scrub",
    "session",
    "unrecord",
]

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict
from yoyo.exceptions import BadMigration, MigrationConflict

from vdata._migration_errors import MigrationError
from vdata._migration_files import MigrationFiles

SCHEMA = "vdata_migrations"
# pg_advisory_lock key of a migration run: the first 8 bytes of
# sha256(b"vdata.migrations"), as a signed bigint. Advisory locks are per
# database, so runs against different databases never wait for each other.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"vdata.migrations").digest()[:8], "big", signed=True)


# -- connections ---------------------------------------------------------------


def conninfo(dsn: str) -> dict[str, Any]:
    """Return the DSN's parameters; accept postgresql://, postgres:// and +psycopg."""
    dsn = re.sub(r"^postgres(?:ql)?\+psycopg2?://", "postgresql://", dsn.strip())
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise MigrationError(f"vdata migrate: the DSN cannot be parsed ({exc})") from None
    if not params.get("dbname"):
        raise MigrationError("vdata migrate: the DSN names no database")
    return params


def _options(lock_timeout: float, statement_timeout: float) -> str:
    return (
        f"-c lock_timeout={round(lock_timeout * 1000)}"
        f" -c statement_timeout={round(statement_timeout * 1000)}"
    )


def _yoyo_uri(params: dict[str, Any], options: str) -> str:
    # Every parameter goes in the query string, which yoyo hands to
    # psycopg.connect(**args): multi-host lists and sslmode survive that way.
    args = {k: str(v) for k, v in params.items() if k != "dbname"}
    args["options"] = f"{args['options']} {options}" if "options" in args else options
    args["schema"] = SCHEMA  # yoyo: SET search_path, so its tables land there
    return f"postgresql+psycopg:///{params['dbname']}?{urlencode(args)}"


def scrub(message: str, params: dict[str, Any]) -> str:
    """Return *message* with the DSN's password, if any, replaced by ``***``."""
    password = params.get("password")
    return message.replace(str(password), "***") if password else message


@contextmanager
def session(
    dsn: str, *, lock_timeout: float, statement_timeout: float, lock_wait: float
) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """Connect, take the run's advisory lock, yield (connection, yoyo URI)."""
    params = conninfo(dsn)
    with connect(params) as conn:
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
            _ensure_bookkeeping(conn)
            yield conn, _yoyo_uri(params, _options(lock_timeout, statement_timeout))
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


def _ensure_bookkeeping(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute("CREATE SCHEMA IF NOT EXISTS vdata_migrations")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS vdata_migrations.checksum ("
            " migration_id text PRIMARY KEY,"
            " apply_sha256 text NOT NULL,"
            " rollback_sha256 text NOT NULL,"
            " recorded_at timestamptz NOT NULL DEFAULT now())"
        )


@contextmanager
def open_backend(uri: str) -> Iterator[Any]:
    """Yield yoyo's backend for *uri* (from session()); close its connection after."""
    from yoyo import get_backend

    backend = get_backend(uri)
    try:
        yield backend
    finally:
        backend.connection.close()


# -- checksums -----------------------------------------------------------------


def recorded(cursor: Any) -> dict[str, tuple[str, str]]:
    """Return the recorded (apply, rollback) SHA-256 of each migration id."""
    cursor.execute(
        "SELECT migration_id, apply_sha256, rollback_sha256 FROM vdata_migrations.checksum"
    )
    return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def record(backend: Any, files: MigrationFiles) -> None:
    """Record the checksums of *files*, through yoyo's *backend*."""
    apply_sum, rollback_sum = files.checksums()
    backend.execute(
        "INSERT INTO vdata_migrations.checksum (migration_id, apply_sha256, rollback_sha256)"
        " VALUES (:id, :apply, :rollback)"
        " ON CONFLICT (migration_id) DO UPDATE SET apply_sha256 = EXCLUDED.apply_sha256,"
        " rollback_sha256 = EXCLUDED.rollback_sha256, recorded_at = now()",
        {"id": files.id, "apply": apply_sum, "rollback": rollback_sum},
    )


def unrecord(backend: Any, migration_id: str) -> None:
    """Forget the checksums of *migration_id*, through yoyo's *backend*."""
    backend.execute(
        "DELETE FROM vdata_migrations.checksum WHERE migration_id = :id", {"id": migration_id}
    )
