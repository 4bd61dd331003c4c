"""Where a run's migrations come from: vdata's bundled folder, or a service's own.

Each folder of migrations is a *source* with a name. A source's bookkeeping
(yoyo's tables and the checksums) lives in a schema of its own, so that two
sources applied to one database never see, block or reorder each other's
migrations:

* the bundled migrations are the source ``vdata``, bookkeeping in
  ``vdata_migrations``;
* a service's folder is the source named by ``source=`` (``--source``), or by
  default after the folder: its own name, or its parent's when the folder is
  called ``migrations`` (``invoices/migrations`` is ``invoices``); bookkeeping
  in ``vdata_migrations_<name>``.
"""

from __future__ import annotations

__all__ = ["BUNDLED", "SCHEMA", "Source", "resolve"]

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vdata._resources import migrations_dir
from vdata.migrations.errors import MigrationError

BUNDLED = "vdata"
SCHEMA = "vdata_migrations"
# A schema name is at most 63 bytes: "vdata_migrations_" leaves 46.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True, slots=True)
class Source:
    """One folder of migrations and the name its bookkeeping is kept under."""

    name: str
    directory: Path

    @property
    def schema(self) -> str:
        """The schema holding this source's bookkeeping tables."""
        return SCHEMA if self.name == BUNDLED else f"{SCHEMA}_{self.name}"


def resolve(migrations: str | os.PathLike[str] | None, source: str | None = None) -> Source:
    """Return the source of *migrations* (a folder; None: the bundled ones), named *source*."""
    if migrations is None:
        if source not in (None, BUNDLED):
            raise MigrationError(
                f"vdata migrate: source {source!r} names a folder of your own; "
                "give that folder too (--migrations DIR)"
            )
        return Source(BUNDLED, migrations_dir())
    directory = Path(migrations)
    if not directory.is_dir():
        raise MigrationError(f"vdata migrate: {directory} is not a folder of migrations")
    if source is None and directory.resolve() == migrations_dir().resolve():
        source = BUNDLED
    name = _default_name(directory) if source is None else source
    if not _NAME.fullmatch(name):
        raise MigrationError(
            f"vdata migrate: {name!r} cannot name the source of {directory}: use 1-40 of "
            "a-z, 0-9 and _, starting with a letter (--source NAME)"
        )
    return Source(name, directory)


def _default_name(directory: Path) -> str:
    folder = directory.resolve()
    if folder.name == "migrations":
        folder = folder.parent
    return re.sub(r"[^a-z0-9]+", "_", folder.name.lower()).strip("_")
