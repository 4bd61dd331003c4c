"""Apply, roll back and list the schema migrations (yoyo, plus a lock and checksums).

yoyo runs the plain-SQL files; this module adds what it lacks:

* one PostgreSQL advisory lock around a whole run, with the pending list
  computed only once the lock is held, so concurrent runs apply each
  migration exactly once;
* a SHA-256 of each applied file (and its rollback), recorded in the same
  transaction as the migration, and a refusal naming the file when an
  applied migration was edited since;
* ``lock_timeout`` and ``statement_timeout`` on every migration session;
* after applying, the service role's grants (``app.grant_service_role``) and
  the audit log's future partitions (``app.create_audit_log_partitions``).

Bookkeeping (yoyo's tables and ours) lives in the schema ``vdata_migrations``.

This module is the public API and the runs; ``_migration_files`` reads and
writes the migration folder, ``_migration_db`` owns the DSN, the locked
session and the bookkeeping tables, ``_migration_status`` reads what
``status()`` reports, ``_migration_errors`` the two errors.
"""

from __future__ import annotations

__all__ = [
    "MigrationChangedError",
    "MigrationError",
    "MigrationState",
    "apply",
    "new",
    "rollback",
    "status",
]

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from vdata import _migration_db as _db
from vdata import _migration_files as _files
from vdata import _migration_status as _status
from vdata._migration_db import LOCK_KEY as LOCK_KEY
from vdata._migration_db import SCHEMA as SCHEMA
from vdata._migration_errors import MigrationChangedError, MigrationError
from vdata._migration_status import MigrationState
from vdata._resources import migrations_dir

if TYPE_CHECKING:
    from yoyo.migrations import Migration, MigrationList

logger = logging.getLogger("vdata.migrations")

# How many months of audit_log partitions each run makes sure exist.
PARTITION_MONTHS_AHEAD = 3

_ROLE_NAME = re.compile(r"[^\x00]{1,63}")


# -- the runs ------------------------------------------------------------------


def _verify(
    backend: Any, migrations: MigrationList, found: dict[str, _files.MigrationFiles]
) -> None:
    """Refuse to run when an applied migration's files changed; adopt unrecorded ones."""
    applied = set(backend.get_applied_migration_hashes())
    recorded = _db.recorded(backend.cursor())
    for m in migrations:
        if m.hash not in applied or m.id not in found:
            continue
        if m.id not in recorded:
            # Applied by plain yoyo, or by a vdata older than checksums.
            logger.warning("recording the checksum of %s, applied without one", m.id)
            with backend.transaction():
                _db.record(backend, found[m.id])
            continue
        path = _files.changed(found[m.id], recorded[m.id])
        if path is not None:
            raise MigrationChangedError(
                f"vdata migrate: {path} was edited after migration {m.id} was applied; "
                "restore its applied content and put the change in a new migration "
                "(vdata migrate new NAME)",
                path=path,
            )


def _load(directory: Path | None) -> tuple[MigrationList, dict[str, _files.MigrationFiles]]:
    from yoyo import read_migrations

    directory = directory or migrations_dir()
    return read_migrations(str(directory)), _files.find(directory)


def _run_one(backend: Any, m: Migration, files: _files.MigrationFiles, direction: str) -> None:
    """Run *m* in *direction*, and its yoyo and checksum bookkeeping, in one transaction."""
    m.load()
    if not m.use_transactions:
        # `-- transactional: false` (CREATE INDEX CONCURRENTLY): yoyo's own
        # path, then the checksum; a crash in between is adopted next run.
        (backend.apply_one if direction == "apply" else backend.rollback_one)(m)
        with backend.transaction():
            if direction == "apply":
                _db.record(backend, files)
            else:
                _db.unrecord(backend, m.id)
        return
    with backend.transaction():
        m.process_steps(backend, direction)
        if direction == "apply":
            backend.mark_one(m, log=False)
            _db.record(backend, files)
        else:
            backend.unmark_one(m, log=False)
            _db.unrecord(backend, m.id)
        backend.log_migration(m, direction)


def _fail(m: Migration, direction: str, exc: Exception) -> MigrationError:
    verb = "applying" if direction == "apply" else "rolling back"
    return MigrationError(f"vdata migrate: {verb} {m.id} failed: {str(exc).strip()}")


def apply(
    dsn: str,
    *,
    app_role: str = "vdata_app",
    directory: Path | None = None,
    lock_timeout: float = 10.0,
    statement_timeout: float = 15 * 60.0,
    lock_wait: float = 5 * 60.0,
) -> list[str]:
    """Apply every pending migration; return their ids in order.

    Then grant *app_role* its privileges (skipped, with a warning, if the role
    does not exist) and create the coming months' audit_log partitions. Raise
    MigrationChangedError if an applied migration was edited, MigrationError
    on any other failure (the failed migration is rolled back whole).
    """
    if not _ROLE_NAME.fullmatch(app_role):
        raise MigrationError(f"vdata migrate: {app_role!r} is not a valid role name")
    migrations, found = _load(directory)
    done: list[str] = []
    with (
        _db.session(
            dsn, lock_timeout=lock_timeout, statement_timeout=statement_timeout, lock_wait=lock_wait
        ) as (conn, uri),
        _db.open_backend(uri) as backend,
    ):
        _verify(backend, migrations, found)
        for m in backend.to_apply(migrations):
            logger.info("applying %s", m.id)
            try:
                _run_one(backend, m, found[m.id], "apply")
            except backend.DatabaseError as exc:
                raise _fail(m, "apply", exc) from exc
            done.append(m.id)
        _maintain(conn, app_role)
    return done


def _maintain(conn: psycopg.Connection[Any], app_role: str) -> None:
    """Grant the service role and create future partitions, where those functions exist."""
    with conn.transaction():
        if _exists(conn, "app.grant_service_role(name)"):
            granted = conn.execute("SELECT app.grant_service_role(%s)", (app_role,)).fetchone()
            if not (granted and granted[0]):
                logger.warning(
                    "role %s does not exist: no privileges granted; create it "
                    "(CREATE ROLE %s LOGIN) and run `vdata migrate` again",
                    app_role,
                    app_role,
                )
        if _exists(conn, "app.create_audit_log_partitions(integer)"):
            conn.execute(
                "SELECT count(*) FROM app.create_audit_log_partitions(%s)",
                (PARTITION_MONTHS_AHEAD,),
            )


def _exists(conn: psycopg.Connection[Any], signature: str) -> bool:
    row = conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (signature,)).fetchone()
    return bool(row and row[0])


def rollback(
    dsn: str,
    count: int = 1,
    *,
    app_role: str = "vdata_app",
    directory: Path | None = None,
    lock_timeout: float = 10.0,
    statement_timeout: float = 15 * 60.0,
    lock_wait: float = 5 * 60.0,
) -> list[str]:
    """Roll back the *count* most recently applied migrations; return their ids.

    *app_role* is accepted for symmetry with apply(): privileges go with the
    objects a rollback drops. Raise MigrationError if a migration to roll back
    has no rollback file, or its files were edited since it was applied.
    """
    del app_role
    if count < 1:
        raise MigrationError(f"vdata migrate: rollback count must be at least 1, got {count}")
    migrations, found = _load(directory)
    done: list[str] = []
    with (
        _db.session(
            dsn, lock_timeout=lock_timeout, statement_timeout=statement_timeout, lock_wait=lock_wait
        ) as (_conn, uri),
        _db.open_backend(uri) as backend,
    ):
        _verify(backend, migrations, found)
        for m in list(backend.to_rollback(migrations))[:count]:
            files = found[m.id]
            if not files.rollback_path.exists():
                # yoyo would silently skip it and mark it rolled back.
                raise MigrationError(
                    f"vdata migrate: {m.id} has no rollback file ({files.rollback_path.name})"
                )
            logger.info("rolling back %s", m.id)
            try:
                _run_one(backend, m, files, "rollback")
            except backend.DatabaseError as exc:
                raise _fail(m, "rollback", exc) from exc
            done.append(m.id)
    return done


def status(dsn: str, *, directory: Path | None = None) -> list[MigrationState]:
    """Return every migration, file order first, then applied ids without a file.

    Read-only: creates nothing, takes no lock.
    """
    return _status.read(dsn, directory or migrations_dir())


def new(name: str, directory: Path | None = None) -> tuple[Path, Path]:
    """Create ``NNNN.<name>.sql`` and its ``.rollback.sql``, depending on the latest.

    *name* is ``<verb>-<object>`` (e.g. ``add-tasks-labels``); spaces and
    underscores become hyphens. Return the two paths; raise MigrationError on
    a bad name.
    """
    return _files.create(name, directory)
