"""The ``vdata.testing`` plugin's admin connection: the app role, clones, drops.

One autocommit owner connection to the server's ``postgres`` database per
test session, reopened when the server restarted under it (tests may stop
and start a ``PgServer``).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vdata.testing.providers import APP_ROLE, Server, connect

if TYPE_CHECKING:
    import psycopg

__all__ = ["Admin", "dbname", "ident"]


def ident(name: str) -> str:
    """Quote ``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


class Admin:
    """One autocommit owner connection to ``postgres``, reopened if the server restarted."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn: psycopg.Connection[Any] | None = None

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        for attempt in (1, 2):
            if self.conn is None or self.conn.closed or self.conn.broken:
                self.conn = connect(self.server.dsn())
            try:
                cur = self.conn.execute(sql.encode(), params)
                return list(cur.fetchall()) if cur.description else []
            except psycopg.OperationalError:
                if attempt == 2 or not (self.conn.closed or self.conn.broken):
                    raise
                self.conn = None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def ensure_app_role(self, password: str | None) -> None:
        """Create the login role ``vdata_app`` if it does not exist yet."""
        import psycopg
        from psycopg import sql

        if self.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)):
            return
        stmt = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_ROLE))
        if password:
            stmt = sql.SQL("{} PASSWORD {}").format(stmt, sql.Literal(password))
        try:
            assert self.conn is not None
            self.conn.execute(stmt)
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # another session created it meanwhile

    def clone(self, template: str, prefix: str) -> str:
        """``CREATE DATABASE <prefix_random> TEMPLATE template``; return the new name."""
        import psycopg

        name = f"{prefix}_{secrets.token_hex(5)}"
        for attempt in range(10):
            try:
                self.execute(f"CREATE DATABASE {ident(name)} TEMPLATE {ident(template)}")
                return name
            except psycopg.errors.ObjectInUse:
                # a session still sits on the template (a leaked migration
                # connection, a test that connected to it): end it and retry
                if attempt == 9:
                    raise
                self.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (template,),
                )
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def drop(self, name: str, *, template: bool = False) -> None:
        """Drop database ``name`` (ending its sessions); no error if it is gone."""
        if template:
            with contextlib.suppress(Exception):
                self.execute(f"ALTER DATABASE {ident(name)} WITH IS_TEMPLATE false")
        if self.server.version >= 13:
            self.execute(f"DROP DATABASE IF EXISTS {ident(name)} WITH (FORCE)")
        else:  # pragma: no cover - PostgreSQL 12 and older
            self.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            self.execute(f"DROP DATABASE IF EXISTS {ident(name)}")


def dbname(dsn: str) -> str:
    """Return the database name of URL ``dsn``."""
    return urlsplit(dsn).path.lstrip("/")
