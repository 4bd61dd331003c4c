"""Apply, roll back and list schema migrations: vdata's bundled ones, or a service's own.

yoyo runs the plain-SQL files; this package adds what it lacks:

* *sources*: each folder of migrations (vdata's bundled ones, a service's
  own) keeps its bookkeeping in a schema of its own, so that neither blocks
  nor reorders the other (``sources``);
* one PostgreSQL advisory lock around a whole run, with the pending list
  computed only once the lock is held, so concurrent runs apply each
  migration exactly once (``session``);
* a SHA-256 of each applied file (and its rollback), recorded in the same
  transaction as the migration, and a refusal naming the file when an
  applied migration was edited since;
* ``lock_timeout`` and ``statement_timeout`` on every migration session, and
  the DSN's own ``search_path`` for the migration's statements;
* after applying, the service role's grants (``app.grant_service_role``) and
  the audit log's future partitions (``app.create_audit_log_partitions``),
  where vdata's bundled migrations created those functions.

This module holds the public API and the runs; ``files`` reads and writes a
migration folder, ``session`` owns the DSN, the locked session and the
bookkeeping tables, ``state`` reads what ``status()`` reports, ``errors``
the two errors.
"""

from __future__ import annotations

__all__ = [
    "BUNDLED",
    "LOCK_KEY",
    "MigrationChangedError",
    "MigrationError",
    "MigrationState",
    "apply",
    "new",
    "rollback",
    "status",
]

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from vdata.migrations import files as _files
from vdata.migrations import session as _db
from vdata.migrations import state as _state
from vdata.migrations.errors import MigrationChangedError, MigrationError
from vdata.migrations.session import LOCK_KEY
from vdata.migrations.sources import BUNDLED, SCHEMA, Source, resolve
from vdata.migrations.state import MigrationState

if TYPE_CHECKING:
    from yoyo.migrations import Migration, MigrationList

Folder = str | os.PathLike[str]
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


def _load(source: Source) -> tuple[MigrationList, dict[str, _files.MigrationFiles]]:
    """Read *source*'s folder; refuse a ``-- depends:`` on a migration outside it."""
    from yoyo import read_migrations

    migrations = read_migrations(str(source.directory))
    here = {(m.id, m.path) for m in migrations}
    for m in migrations:
        # yoyo resolves depends through every migration read in this process,
        # so a name from another folder might resolve today and not tomorrow.
        for dep in m.depends:
            if (dep.id, dep.path) not in here:
                raise MigrationError(
                    f"vdata migrate: {m.id} depends on {dep.id}, which is not in "
                    f"{source.directory}; a migration can depend only on its own folder"
                )
    return migrations, _files.find(source.directory)


def _run_one(
    backend: Any, m: Migration, files: _files.MigrationFiles, direction: str, held: _db.Held
) -> None:
    """Run *m* in *direction*, and its yoyo and checksum bookkeeping, in one transaction.

    The migration's statements run with the DSN's own search path; yoyo's and
    our bookkeeping with the source's schema.
    """
    m.load()
    if not m.use_transactions:
        # `-- transactional: false` (CREATE INDEX CONCURRENTLY): the steps on
        # a connection of their own, as yoyo's apply_one does, then the
        # bookkeeping; a crash in between is adopted next run.
        with backend.copy() as steps:
            _db.use_search_path(steps, held.search_path)
            m.process_steps(steps, direction)
        backend.log_migration(m, direction)
        with backend.transaction():
            if direction == "apply":
                backend.mark_one(m, log=False)
                _db.record(backend, files)
            else:
                backend.unmark_one(m, log=False)
                _db.unrecord(backend, m.id)
        return
    with backend.transaction():
        _db.use_search_path(backend, held.search_path)
        m.process_steps(backend, direction)
        _db.use_search_path(backend, held.schema)
        if direction == "apply":
            backend.mark_one(m, log=False)
            _db.record(backend, files)
        else:
            backend.unmark_one(m, log=False)
            _db.unrecord(backend, m.id)
        backend.log_migration(m, direction)


@contextlib.contextmanager
def _opened(
    dsn: str, src: Source, lock_timeout: float, statement_timeout: float, lock_wait: float
) -> Iterator[tuple[_db.Held, Any, MigrationList, dict[str, _files.MigrationFiles]]]:
    """Hold the migration lock for *src*; yield the session, yoyo's backend and the verified files.

    Raise MigrationChangedError if an applied migration was edited since.
    """
    with (
        _db.session(
            dsn,
            src,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            lock_wait=lock_wait,
        ) as held,
        _db.open_backend(held.uri) as backend,
    ):
        listed, found = _load(src)
        _verify(backend, listed, found)
        yield held, backend, listed, found


def _fail(m: Migration, direction: str, exc: Exception) -> MigrationError:
    verb = "applying" if direction == "apply" else "rolling back"
    return MigrationError(f"vdata migrate: {verb} {m.id} failed: {str(exc).strip()}")


def apply(
    dsn: str,
    *,
    migrations: Folder | None = None,
    source: str | None = None,
    app_role: str = "vdata_app",
    lock_timeout: float = 10.0,
    statement_timeout: float = 15 * 60.0,
    lock_wait: float = 5 * 60.0,
) -> list[str]:
    """Apply every pending migration of one source; return their ids in order.

    *migrations* is a folder of ``NNNN.<name>.sql`` files (None: vdata's
    bundled ones); *source* names its bookkeeping (default: after the
    folder; see ``vdata.migrations.sources``). Then, where vdata's bundled
    migrations are applied, grant *app_role* its privileges on ``app``
    (skipped, with a warning, if the role does not exist) and create the
    coming months' audit_log partitions. Raise MigrationChangedError if an
    applied migration was edited, MigrationError on any other failure (the
    failed migration is rolled back whole).
    """
    if not _ROLE_NAME.fullmatch(app_role):
        raise MigrationError(f"vdata migrate: {app_role!r} is not a valid role name")
    src = resolve(migrations, source)
    done: list[str] = []
    with _opened(dsn, src, lock_timeout, statement_timeout, lock_wait) as (
        held,
        backend,
        listed,
        found,
    ):
        pending = backend.to_apply(listed)
        if pending and not backend.get_applied_migration_hashes():
            _refuse_if_tracked_elsewhere(held, src, [found[m.id] for m in pending])
        for m in pending:
            logger.info("applying %s", m.id)
            try:
                _run_one(backend, m, found[m.id], "apply", held)
            except backend.DatabaseError as exc:
                raise _fail(m, "apply", exc) from exc
            done.append(m.id)
        _maintain(held.conn, app_role)
    return done


def _refuse_if_tracked_elsewhere(
    held: _db.Held, src: Source, pending: list[_files.MigrationFiles]
) -> None:
    """On a source's first run, refuse files already applied under another source."""
    sums = [files.checksums()[0] for files in pending]
    other = _db.tracked_elsewhere(held.conn, src.schema, sums)
    if other is None:
        return
    name = BUNDLED if other == SCHEMA else other.removeprefix(f"{SCHEMA}_")
    how = (
        "run without --migrations (Python: migrations=None)"
        if name == BUNDLED
        else f"pass --source {name} (Python: source={name!r})"
    )
    raise MigrationError(
        f"vdata migrate: migrations in {src.directory} were applied as the source {name!r}, "
        f"not {src.name!r}; {how}, or nothing would stop them being applied twice"
    )


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
    migrations: Folder | None = None,
    source: str | None = None,
    app_role: str = "vdata_app",
    lock_timeout: float = 10.0,
    statement_timeout: float = 15 * 60.0,
    lock_wait: float = 5 * 60.0,
) -> list[str]:
    """Roll back the *count* most recently applied migrations of one source; return their ids.

    *migrations* and *source* as for apply(). *app_role* is accepted for
    symmetry with apply(): privileges go with the objects a rollback drops.
    Raise MigrationError if a migration to roll back has no rollback file, or
    its files were edited since it was applied.
    """
    del app_role
    if count < 1:
        raise MigrationError(f"vdata migrate: rollback count must be at least 1, got {count}")
    src = resolve(migrations, source)
    done: list[str] = []
    with _opened(dsn, src, lock_timeout, statement_timeout, lock_wait) as (
        held,
        backend,
        listed,
        found,
    ):
        for m in list(backend.to_rollback(listed))[:count]:
            files = found[m.id]
            if not files.rollback_path.exists():
                # yoyo would silently skip it and mark it rolled back.
                raise MigrationError(
                    f"vdata migrate: {m.id} has no rollback file ({files.rollback_path.name})"
                )
            logger.info("rolling back %s", m.id)
            try:
                _run_one(backend, m, files, "rollback", held)
            except backend.DatabaseError as exc:
                raise _fail(m, "rollback", exc) from exc
            done.append(m.id)
    return done


def status(
    dsn: str, *, migrations: Folder | None = None, source: str | None = None
) -> list[MigrationState]:
    """Return every migration of one source, file order first, then applied ids without a file.

    *migrations* and *source* as for apply(). Read-only: creates nothing,
    takes no lock.
    """
    return _state.read(dsn, resolve(migrations, source))


def new(name: str, *, migrations: Folder) -> tuple[Path, Path]:
    """Create ``NNNN.<name>.sql`` and its ``.rollback.sql`` in the folder *migrations*.

    *name* is ``<verb>-<object>`` (e.g. ``add-widgets``); spaces and
    underscores become hyphens. The number follows the folder's highest and
    the new file has ``-- depends:`` on that migration. Return the two paths;
    raise MigrationError on a bad name, or a folder inside the installed
    vdata package.
    """
    return _files.create(name, Path(migrations))
