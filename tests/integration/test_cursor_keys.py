"""Keyset cursors without a secret_key: signed with the database's own key, in every process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import vdata
import vdata.migrations
from vdata.security.cursors import CursorCodec

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Another process, with nothing configured but the DSN: continue the listing
# from the cursor given as argv[2], then print that page and its own cursor.
OTHER_PROCESS = """
import asyncio, json, sys
import vdata
import vdata.migrations
from vdata.security.cursors import CursorCodec

async def main() -> None:
    settings = vdata.Settings.from_env(env={"VDATA_DSN": sys.argv[1]})
    assert settings.secret_key == ""
    async with await vdata.connect(settings=settings) as db:
        page = await db.audit.search(cursor=sys.argv[2], limit=2)
        try:
            await db.audit.search(cursor=sys.argv[3], limit=2)
            forged = "accepted"
        except vdata.ValidationError as exc:
            forged = exc.field
        print(json.dumps({
            "ids": [e.entity_id for e in page.items],
            "next": page.next_cursor,
            "forged": forged,
        }))

asyncio.run(main())
"""


def run_other_process(dsn: str, cursor: str, forged: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VDATA_")}
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, dsn, cursor, forged],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def test_a_cursor_from_one_process_works_in_another(vdata_app_dsn: str) -> None:
    settings = vdata.Settings.from_env(env={})
    assert settings.secret_key == ""
    async with await vdata.connect(vdata_app_dsn, settings=settings) as db:
        for n in range(6):
            await db.audit.record("user.login", "user", f"u{n}", actor="ada")
        first = await db.audit.search(limit=2)
        assert [e.entity_id for e in first.items] == ["u5", "u4"]
        assert first.next_cursor is not None
        # A cursor signed with any other key is refused, here and there.
        forged = CursorCodec(b"a guessed key, 16+ bytes").encode(
            (first.items[-1].id,), scope="audit.list_audit_events"
        )
        with pytest.raises(vdata.ValidationError):
            await db.audit.search(cursor=forged)

        other = await asyncio.to_thread(run_other_process, vdata_app_dsn, first.next_cursor, forged)
        assert other["ids"] == ["u3", "u2"]
        assert other["forged"] == "cursor"
        # And the other process's cursor works here.
        third = await db.audit.search(cursor=other["next"], limit=2)
        assert [e.entity_id for e in third.items] == ["u1", "u0"]
        assert third.next_cursor is None


async def test_the_key_lives_in_the_database_readable_not_writable_by_the_service(
    vdata_dsn: str, vdata_app_dsn: str
) -> None:
    app = await asyncpg.connect(vdata_app_dsn)
    try:
        key = await app.fetchval("SELECT secret FROM app.signing_keys WHERE purpose = 'cursor'")
        assert isinstance(key, bytes) and len(key) == 32
        for statement in (
            "UPDATE app.signing_keys SET secret = secret",
            "DELETE FROM app.signing_keys",
            "INSERT INTO app.signing_keys (purpose, secret) VALUES ('x', '\\x00'::bytea)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()
    owner = await asyncpg.connect(vdata_dsn)
    try:
        # PUBLIC has no access at all.
        assert (
            await owner.fetchval(
                "SELECT has_table_privilege('public', 'app.signing_keys', 'SELECT')"
            )
            is False
        )
    finally:
        await owner.close()


async def test_each_migrated_database_draws_its_own_key(vdata_server: Any) -> None:
    import psycopg

    keys = []
    for name in ("vdata_keys_a", "vdata_keys_b"):
        with psycopg.connect(vdata_server.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        try:
            vdata.migrations.apply(vdata_server.dsn(name))
            conn2 = await asyncpg.connect(vdata_server.dsn(name))
            try:
                keys.append(await conn2.fetchval("SELECT secret FROM app.signing_keys"))
            finally:
                await conn2.close()
        finally:
            with psycopg.connect(vdata_server.dsn(), autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    assert len(set(keys)) == 2 and all(len(k) == 32 for k in keys)


async def test_without_the_table_a_listing_says_what_to_configure(
    vdata_dsn: str, vdata_app_dsn: str
) -> None:
    owner = await asyncpg.connect(vdata_dsn)
    try:
        await owner.execute("REVOKE SELECT ON app.signing_keys FROM vdata_app")
    finally:
        await owner.close()
    async with await vdata.connect(vdata_app_dsn, settings=vdata.Settings.from_env(env={})) as db:
        with pytest.raises(vdata.ConfigurationError) as caught:
            await db.audit.search()
        assert "VDATA_SECRET_KEY" in str(caught.value)
    # With a secret_key the database's key is not needed.
    keyed = vdata.Settings.from_env(env={}, secret_key="a configured secret key, long enough")
    async with await vdata.connect(vdata_app_dsn, settings=keyed) as db:
        assert (await db.audit.search()).items == []
