"""Locate the SQL and migration files, installed or in a source tree."""

from __future__ import annotations

__all__ = ["migrations_dir", "sql_dir"]

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(installed: str, source: str) -> Path:
    # A wheel maps the repository's sql/ and migrations/ into the package
    # (pyproject's force-include); an editable or source checkout has them
    # beside the package.
    for candidate in (_PACKAGE / installed, _PACKAGE.parent / source):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"vdata: cannot find the {source}/ folder next to {_PACKAGE}")


def sql_dir() -> Path:
    """Return the folder of named queries (``sql/``)."""
    return _find("_sql", "sql")


def migrations_dir() -> Path:
    """Return the folder of yoyo migrations (``migrations/``)."""
    return _find("_migrations", "migrations")
