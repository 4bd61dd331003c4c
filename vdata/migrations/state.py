"""What ``vdata.migrations.status()`` reports: each migration's state in a database.

Read-only: it looks at the source's bookkeeping tables when they exist and
creates nothing, takes no lock.
"""

from __future__ import annotations

__all__ = ["MigrationState", "read"]

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import psycopg

from vdata.migrations import files as _files
from vdata.migrations import session as _db
from vdata.migrations.errors import MigrationError
from vdata.migrations.sources import Source


@dataclass(frozen=True, slots=True)
class MigrationState:
    """One migration as the database sees it.

    ``state`` is ``applied``, ``pending``, ``changed`` (applied, but its file or
    rollback file differs from what was applied) or ``missing`` (applied from
    this source, but no file with that id exists in its folder).
    """

    id: str
    state: Literal["applied", "pending", "changed", "missing"]
    path: Path | None
    applied_at: datetime | None = None
    detail: str = ""


def read(dsn: str, source: Source) -> list[MigrationState]:
    """Return every migration of *source*, file order first, then applied ids without a file.

    Read-only: creates nothing, takes no lock.
    """
    found = _files.find(source.directory)
    params = _db.conninfo(dsn)
    try:
        with _db.connect(params) as conn, conn.transaction(), conn.cursor() as cur:
            # The bookkeeping tables are named through the search path, as
            # the run names them; to_regclass() is NULL where they do not exist.
            cur.execute("SELECT set_config('search_path', %s, true)", (source.schema,))
            cur.execute("SELECT to_regclass('_yoyo_migration'), to_regclass('checksum')")
            row = cur.fetchone()
            applied: dict[str, datetime] = {}
            recorded: dict[str, tuple[str, str]] = {}
            if row and row[0]:
                cur.execute("SELECT migration_id, applied_at_utc FROM _yoyo_migration")
                applied = {mid: when for mid, when in cur.fetchall()}
            if row and row[1]:
                recorded = _db.recorded(cur)
    except psycopg.Error as exc:
        raise MigrationError(f"vdata migrate: {_db.scrub(str(exc).strip(), params)}") from None
    states = []
    for mid, files in found.items():
        if mid not in applied:
            states.append(MigrationState(mid, "pending", files.path))
            continue
        changed = _files.changed(files, recorded[mid]) if mid in recorded else None
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
