"""The migration folder: its files, their checksums, and new migrations' files.

A migration is ``<id>.sql`` plus, optionally, ``<id>.rollback.sql``; this
module reads that layout and writes it (``vdata migrate new``). It never
touches a database.
"""

from __future__ import annotations

__all__ = ["MigrationFiles", "changed", "create", "find"]

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from vdata.migrations.errors import MigrationError

# The vdata package this module belongs to (installed, or a source checkout).
_PACKAGE = Path(__file__).resolve().parents[1]

_NEW_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")


@dataclass(frozen=True, slots=True)
class MigrationFiles:
    """One migration's file and its rollback file (which may not exist)."""

    id: str
    path: Path
    rollback_path: Path

    def checksums(self) -> tuple[str, str]:
        rollback = self.rollback_path.read_bytes() if self.rollback_path.exists() else b""
        return _sha256(self.path.read_bytes()), _sha256(rollback)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find(directory: Path) -> dict[str, MigrationFiles]:
    """Return the migrations in *directory* by id, in file name order."""
    found = {}
    for path in sorted(directory.glob("*.sql")):
        if path.name.endswith(".rollback.sql"):
            continue
        found[path.stem] = MigrationFiles(path.stem, path, path.with_suffix(".rollback.sql"))
    return found


def changed(files: MigrationFiles, recorded: tuple[str, str]) -> Path | None:
    """Return the first file of *files* whose content differs from *recorded*."""
    apply_sum, rollback_sum = files.checksums()
    if apply_sum != recorded[0]:
        return files.path
    if rollback_sum != recorded[1]:
        return files.rollback_path
    return None


def create(name: str, directory: Path) -> tuple[Path, Path]:
    """Create ``NNNN.<name>.sql`` and its ``.rollback.sql`` in *directory*.

    Number it after the folder's highest; refuse a folder inside the installed
    vdata package (the next ``vdata migrate`` would apply it as vdata's own).
    """
    if not directory.is_dir():
        raise MigrationError(f"vdata migrate new: {directory} is not a folder")
    if directory.resolve().is_relative_to(_PACKAGE):
        raise MigrationError(
            f"vdata migrate new: {directory} is inside the installed vdata package; "
            "keep your migrations in your own folder (--migrations DIR)"
        )
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not _NEW_NAME.fullmatch(slug):
        raise MigrationError(
            f"vdata migrate new: {name!r} is not <verb>-<object> (e.g. add-tasks-labels)"
        )
    found = find(directory)
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
