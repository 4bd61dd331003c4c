"""What ``vdata check`` and ``vdata explain`` look at: folders of SQL, migrations, bindings.

Without folders they look at vdata's own ``sql/``, whose Struct bindings
are declared beside the bundled repositories (importing
``vdata.repositories`` declares them), on a schema migrated with the
bundled migrations. A service names its own folders instead:

* ``sql``: folders of named queries (each loaded once by
  ``vdata.load_queries``, as the service loads them);
* ``modules``: Python modules to import first; their ``Queries.bind(...)``
  calls record which Struct each query's rows become, on the same loaded
  folder, so that the check compares them. Without modules a folder is
  checked as SQL alone: every query is prepared, none is compared with a
  Struct;
* ``migrations``: folders of migrations building the schema of a throwaway
  database, after the bundled ones when ``bundled`` is set.
"""

from __future__ import annotations

__all__ = ["Sources", "import_modules"]

import importlib
import os
import pkgutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vdata._resources import sql_dir


@dataclass(frozen=True, slots=True)
class Sources:
    """The folders and modules one run of ``check`` or ``explain`` looks at."""

    sql: tuple[Path, ...] = ()
    migrations: tuple[Path, ...] = ()
    modules: tuple[str, ...] = ()
    bundled: bool | None = None  # None: the bundled migrations only for vdata's own sql/

    @classmethod
    def of(
        cls,
        sql: Sequence[str | os.PathLike[str]] = (),
        migrations: Sequence[str | os.PathLike[str]] = (),
        modules: Sequence[str] = (),
        bundled: bool | None = None,
    ) -> Sources:
        """Build the sources from command-line style lists (paths as given)."""
        return cls(
            sql=tuple(Path(p) for p in sql),
            migrations=tuple(Path(p) for p in migrations),
            modules=tuple(modules),
            bundled=bundled,
        )

    @property
    def own(self) -> bool:
        """True when the run looks at vdata's own ``sql/`` (no folder was named)."""
        return not self.sql

    @property
    def roots(self) -> tuple[Path, ...]:
        """The folders of named queries: the given ones, or vdata's ``sql/``."""
        return self.sql or (sql_dir(),)

    @property
    def apply_bundled(self) -> bool:
        """True if the schema needs vdata's bundled migrations."""
        return self.own if self.bundled is None else self.bundled

    def describe(self) -> str:
        """Return what the schema is migrated with, for a person."""
        parts = ["vdata's bundled migrations"] if self.apply_bundled else []
        parts += [str(d) for d in self.migrations]
        return " + ".join(parts) or "no migrations"


def import_modules(sources: Sources) -> list[str]:
    """Import what declares the Struct bindings; return one line per module that failed.

    For vdata's own ``sql/`` that is every ``vdata.repositories`` module;
    for a service, its ``modules`` (importable from ``sys.path``). A module
    that fails does not hide the others.
    """
    names: list[str] = []
    if sources.own:
        import vdata.repositories as package

        prefix = package.__name__ + "."
        names = [info.name for info in pkgutil.iter_modules(package.__path__, prefix)]
    names += sources.modules
    failures = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken module must not hide the rest
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    return failures
