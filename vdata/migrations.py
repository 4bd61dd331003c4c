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

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict
from yoyo.exceptions import BadMigration, MigrationConflict

from vdata._resources import migrations_dir
from vdata.errors import DatabaseError

if TYPE_CHECKING:
    from yoyo.migrations import Migration, MigrationList

logger = logging.getLogger("vdata.migrations")

SCHEMA = "vdata_migrations"
# pg_advisory_lock key of a migration run: the first 8 bytes of
# sha256(b"vdata.migrations"), as a signed bigint. Advisory locks are per
# database, so runs against different databases never wait for each other.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"vdata.migrations").digest()[:8], "big", signed=True)
# How many months of audit_log partitions each run makes sure exist.
PARTITION_MONTHS_AHEAD = 3

_ROLE_NAME = re.compile(r"[^\x00]{1,63}")
_NEW_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")


class MigrationError(DatabaseError):
    """A migration run failed; the message says which migration and why."""


class MigrationChangedError(MigrationError):
    """An applied migration's file was edited after it was applied."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


# errors.VdataError labels its subclasses "vdata" (the public namespace);
# these two live here, and pickling must find them here.
MigrationError.__module__ = MigrationChangedError.__module__ = __name__


@dataclass(frozen=True, slots=True)
class MigrationState:
    """One migration as the database sees it.

    ``state`` is ``applied``, ``pending``, ``changed`` (applied, but its file or
    rollback file differs from what was applied) or ``missing`` (applied, but no
    file with that id exists here).
    """

    id: str
    state: Literal["applied", "pending", "changed", "missing"]
    path: Path | None
    applied_at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Files:
    id: str
    path: Path
    rollback_path: Path

    def checksums(self) -> tuple[str, str]:
        rollback = self.rollback_path.read_bytes() if self.rollback_path.exists() else b""
        return _sha256(self.path.read_bytes()), _sha256(rollback)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(directory: Path) -> dict[str, _Files]:
    found = {}
    for path in sorted(directory.glob("*.sql")):
        if path.name.endswith(".rollback.sql"):
            continue
        found[path.stem] = _Files(path.stem, path, path.with_suffix(".rollback.sql"))
    return found


# -- connections ---------------------------------------------------------------


def _conninfo(dsn: str) -> dict[str, Any]:
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


def _scrub(message: str, params: dict[str, Any]) -> str:
    password = params.get("password")
    return message.replace(str(password), "***") if password else message


@contextmanager
def _session(
    dsn: str, *, lock_timeout: float, statement_timeout: float, lock_wait: float
) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    """Connect, take the run's advisory lock, yield (connection, yoyo URI)."""
    params = _conninfo(dsn)
    with _connect(params) as conn:
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
            raise MigrationError(f"vdata migrate: {_scrub(str(exc).strip(), params)}") from exc
        except (BadMigration, MigrationConflict) as exc:
            # e.g. a `-- depends:` naming no file: a mistake in migrations/.
            raise MigrationError(f"vdata migrate: bad migration: {exc}") from exc
        finally:
            # Closing the session would release the lock too; unlocking first
            # lets a waiting run go on without waiting for the disconnect.
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _connect(params: dict[str, Any]) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(autocommit=True, **params)
    except psycopg.Error as exc:
        raise MigrationError(
            f"vdata migrate: cannot connect to database {params['dbname']!r}: "
            f"{_scrub(str(exc).strip(), params)}"
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


# -- checksums -----------------------------------------------------------------


def _recorded(cursor: Any) -> dict[str, tuple[str, str]]:
    cursor.execute(
        "SELECT migration_id, apply_sha256, rollback_sha256 FROM vdata_migrations.checksum"
    )
    return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def _record(backend: Any, files: _Files) -> None:
    apply_sum, rollback_sum = files.checksums()
    backend.execute(
        "INSERT INTO vdata_migrations.checksum (migration_id, apply_sha256, rollback_sha256)"
        " VALUES (:id, :apply, :rollback)"
        " ON CONFLICT (migration_id) DO UPDATE SET apply_sha256 = EXCLUDED.apply_sha256,"
        " rollback_sha256 = EXCLUDED.rollback_sha256, recorded_at = now()",
        {"id": files.id, "apply": apply_sum, "rollback": rollback_sum},
    )


def _unrecord(backend: Any, migration_id: str) -> None:
    backend.execute(
        "DELETE FROM vdata_migrations.checksum WHERE migration_id = :id", {"id": migration_id}
    )


def _changed(files: _Files, recorded: tuple[str, str]) -> Path | None:
    """Return the first file of *files* whose content differs from *recorded*."""
    apply_sum, rollback_sum = files.checksums()
    if apply_sum != recorded[0]:
        return files.path
    if rollback_sum != recorded[1]:
        return files.rollback_path
    return None


def _verify(backend: Any, migrations: MigrationList, found: dict[str, _Files]) -> None:
    """Refuse to run when an applied migration's files changed; adopt unrecorded ones."""
    applied = set(backend.get_applied_migration_hashes())
    recorded = _recorded(backend.cursor())
    for m in migrations:
        if m.hash not in applied or m.id not in found:
            continue
        if m.id not in recorded:
            # Applied by plain yoyo, or by a vdata older than checksums.
            logger.warning("recording the checksum of %s, applied without one", m.id)
            with backend.transaction():
                _record(backend, found[m.id])
            continue
        path = _changed(found[m.id], recorded[m.id])
        if path is not None:
            raise MigrationChangedError(
                f"vdata migrate: {path} was edited after migration {m.id} was applied; "
                "restore its applied content and put the change in a new migration "
                "(vdata migrate new NAME)",
                path=path,
            )


# -- the runs ------------------------------------------------------------------


def _load(directory: Path | None) -> tuple[MigrationList, dict[str, _Files]]:
    from yoyo import read_migrations

    directory = directory or migrations_dir()
    return read_migrations(str(directory)), _files(directory)


@contextmanager
def _backend(uri: str) -> Iterator[Any]:
    from yoyo import get_backend

    backend = get_backend(uri)
    try:
        yield backend
    finally:
        backend.connection.close()


def _run_one(backend: Any, m: Migration, files: _Files, direction: str) -> None:
    """Run *m* in *direction*, and its yoyo and checksum bookkeeping, in one transaction."""
    m.load()
    if not m.use_transactions:
        # `-- transactional: false` (CREATE INDEX CONCURRENTLY): yoyo's own
        # path, then the checksum; a crash in between is adopted next run.
        (backend.apply_one if direction == "apply" else backend.rollback_one)(m)
        with backend.transaction():
            if direction == "apply":
                _record(backend, files)
            else:
                _unrecord(backend, m.id)
        return
    with backend.transaction():
        m.process_steps(backend, direction)
        if direction == "apply":
            backend.mark_one(m, log=False)
            _record(backend, files)
        else:
            backend.unmark_one(m, log=False)
            _unrecord(backend, m.id)
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
        _session(
            dsn, lock_timeout=lock_timeout, statement_timeout=statement_timeout, lock_wait=lock_wait
        ) as (conn, uri),
        _backend(uri) as backend,
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
        _session(
            dsn, lock_timeout=lock_timeout, statement_timeout=statement_timeout, lock_wait=lock_wait
        ) as (_conn, uri),
        _backend(uri) as backend,
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
    found = _files(directory or migrations_dir())
    params = _conninfo(dsn)
    try:
        with _connect(params) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT to_regclass('vdata_migrations._yoyo_migration'),"
                " to_regclass('vdata_migrations.checksum')"
            )
            row = cur.fetchone()
            applied: dict[str, datetime] = {}
            recorded: dict[str, tuple[str, str]] = {}
            if row and row[0]:
                cur.execute(
                    "SELECT migration_id, applied_at_utc FROM vdata_migrations._yoyo_migration"
                )
                applied = {mid: when for mid, when in cur.fetchall()}
            if row and row[1]:
                recorded = _recorded(cur)
    except psycopg.Error as exc:
        raise MigrationError(f"vdata migrate: {_scrub(str(exc).strip(), params)}") from None
    states = []
    for mid, files in found.items():
        if mid not in applied:
            states.append(MigrationState(mid, "pending", files.path))
            continue
        changed = _changed(files, recorded[mid]) if mid in recorded else None
        states.append(
            MigrationState(
                mid,
                "changed" if changed else "applied",
                files.path,
                applied[mid],
                f"{changed.name} differs from the applied content" if changed else "",
            )
        )
    states += [
        MigrationState(mid, "missing", None, when, "applied, but no such file here")
        for mid, when in sorted(applied.items())
        if mid not in found
    ]
    return states


def new(name: str, directory: Path | None = None) -> tuple[Path, Path]:
    """Create ``NNNN.<name>.sql`` and its ``.rollback.sql``, depending on the latest.

    *name* is ``<verb>-<object>`` (e.g. ``add-tasks-labels``); spaces and
    underscores become hyphens. Return the two paths; raise MigrationError on
    a bad name.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not _NEW_NAME.fullmatch(slug):
        raise MigrationError(
            f"vdata migrate new: {name!r} is not <verb>-<object> (e.g. add-tasks-labels)"
        )
    directory = directory or migrations_dir()
    found = _files(directory)
    numbered = [(int(mid.split(".")[0]), mid) for mid in found if mid.split(".")[0].isdigit()]
    number, latest = max(numbered, default=(0, ""))
    mid = f"{number + 1:04d}.{slug}"
    path = directory / f"{mid}.sql"
    rollback_path = directory / f"{mid}.rollback.sql"
    depends = f"-- depends: {latest}\n" if latest else ""
    path.write_text(
        f"-- Why this step exists, for the DBA who reviews it (replace this line).\n{depends}\n",
        encoding="utf-8",
    )
    rollback_path.write_text(
        f"-- Undo {mid}: drop or restore what it changed, in reverse order.\n\n",
        encoding="utf-8",
    )
    return path, rollback_path
