"""The errors of a migration run: ``MigrationError`` and ``MigrationChangedError``."""

from __future__ import annotations

__all__ = ["MigrationChangedError", "MigrationError"]

from pathlib import Path

from vdata.errors import DatabaseError


class MigrationError(DatabaseError):
    """A migration run failed; the message says which migration and why."""


class MigrationChangedError(MigrationError):
    """An applied migration's file was edited after it was applied."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


# errors.VdataError labels its subclasses "vdata" (the public namespace);
# these two are public as vdata.migrations.MigrationError and kin, and
# pickling must find them there.
MigrationError.__module__ = MigrationChangedError.__module__ = "vdata.migrations"
