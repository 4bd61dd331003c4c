"""A database to check or explain against: ``--dsn``, ``VDATA_DSN``, or a throwaway one."""

from __future__ import annotations

__all__ = ["ScratchUnavailable", "database"]

import contextlib
import os
import sys
from collections.abc import Iterator

APP_ROLE = "vdata_app"


class ScratchUnavailable(RuntimeError):
    """No database was given and no throwaway PostgreSQL could be started."""


@contextlib.contextmanager
def database(dsn: str | None, *, kind: str = "embedded", quiet: bool = False) -> Iterator[str]:
    """Yield *dsn*, else ``$VDATA_DSN``, else a fresh PostgreSQL migrated to head.

    The throwaway server (``vdata.pgserver``, embedded binaries by default) has
    the service role, so the migrations' grants run as in production; it is
    stopped and removed on exit.
    """
    given = dsn or os.environ.get("VDATA_DSN")
    if given:
        yield given
        return
    import psycopg

    from vdata import migrations, pgserver

    try:
        server = pgserver.start(kind)  # type: ignore[arg-type]
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
        migrations.apply(url, app_role=APP_ROLE)
        if not quiet:
            print(
                f"vdata: using a throwaway PostgreSQL {server.version_text} migrated to head",
                file=sys.stderr,
            )
        yield url
