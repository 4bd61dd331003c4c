"""``db.maintenance.cleanup()`` and ``vdata cleanup`` on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import vdata
from tests.integration._users import cheap_settings, new_user
from vdata.database import connect

pytestmark = pytest.mark.integration

VDATA = Path(sys.executable).with_name("vdata")
LOCK_KEY = 33324425434980718  # the cleanup's advisory lock (sql/maintenance)
OLD_PARTITION = "audit_log_y2020m01"


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters."""
    return cheap_settings()


async def _seed(db: Any, owner: asyncpg.Connection) -> dict[str, Any]:
    """Make one row of every kind cleanup deletes, and one it must keep; return their ids."""
    ada = await db.users.create(new_user("ada"), actor="admin")
    bob = await db.users.create(new_user("bob"), actor="admin")
    expired_session = await db.sessions.create(ada.id, actor="ada")
    live_session = await db.sessions.create(ada.id, actor="ada")
    expired_key = await db.api_keys.issue(ada.id, name="expired", actor="ada")
    old_revoked_key = await db.api_keys.issue(ada.id, name="old", actor="ada")
    new_revoked_key = await db.api_keys.issue(ada.id, name="recent", actor="ada")
    live_key = await db.api_keys.issue(ada.id, name="live", actor="ada")
    await db.api_keys.revoke(old_revoked_key.key.id, actor="ada")
    await db.api_keys.revoke(new_revoked_key.key.id, actor="ada")
    await db.users.issue_password_reset("ada")
    await db.users.issue_password_reset("bob")
    await db.users.issue_email_verification(ada.id, actor="admin")
    await db.users.issue_email_verification(bob.id, actor="admin")
    await owner.execute(
        "UPDATE app.sessions SET expires_at = now() - interval '1 hour' WHERE id = $1",
        expired_session.session.id,
    )
    await owner.execute(
        "UPDATE app.api_keys SET expires_at = now() - interval '1 hour' WHERE id = $1",
        expired_key.key.id,
    )
    await owner.execute(
        "UPDATE app.api_keys SET revoked_at = now() - interval '40 days' WHERE id = $1",
        old_revoked_key.key.id,
    )
    await owner.execute(
        "UPDATE app.password_reset_tokens"
        " SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'"
        " WHERE user_id = $1",
        ada.id,
    )
    await owner.execute(
        "UPDATE app.users SET email_verification_expires_at = now() - interval '1 hour'"
        " WHERE id = $1",
        ada.id,
    )
    await owner.execute(
        f"CREATE TABLE app.{OLD_PARTITION} PARTITION OF app.audit_log"
        " FOR VALUES FROM ('2020-01-01 00:00+00') TO ('2020-02-01 00:00+00')"
    )
    return {
        "ada": ada.id,
        "bob": bob.id,
        "expired_session": expired_session.session.id,
        "live_session": live_session.session.id,
        "expired_key": expired_key.key.id,
        "old_revoked_key": old_revoked_key.key.id,
        "new_revoked_key": new_revoked_key.key.id,
        "live_key": live_key.key.id,
    }


async def _state(owner: asyncpg.Connection) -> dict[str, int]:
    return {
        "sessions": await owner.fetchval("SELECT count(*) FROM app.sessions"),
        "api_keys": await owner.fetchval("SELECT count(*) FROM app.api_keys"),
        "resets": await owner.fetchval("SELECT count(*) FROM app.password_reset_tokens"),
        "verifications": await owner.fetchval(
            "SELECT count(*) FROM app.users WHERE email_verification_token_hash IS NOT NULL"
        ),
        "audit": await owner.fetchval("SELECT count(*) FROM app.audit_log"),
        "partition": await owner.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname = $1", OLD_PARTITION
        ),
    }


EXPECTED = {
    "sessions": 1,
    "expired_api_keys": 1,
    "revoked_api_keys": 1,
    "password_resets": 1,
    "email_verifications": 1,
}


def _counts(report: Any) -> dict[str, int]:
    return {name: getattr(report, name) for name in EXPECTED}


async def test_dry_run_reports_and_deletes_nothing_then_a_run_deletes_once(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    ids = await _seed(vdata_db, owner)
    before = await _state(owner)
    dry = await vdata_db.maintenance.cleanup(dry_run=True, audit_keep_months=3)
    assert dry.ran and dry.dry_run
    assert _counts(dry) == EXPECTED and dry.audit_partitions == [OLD_PARTITION]
    assert await _state(owner) == before

    done = await vdata_db.maintenance.cleanup(actor="ops")
    assert done.ran and not done.dry_run
    assert _counts(done) == EXPECTED and done.audit_partitions == []
    after = await _state(owner)
    assert after["sessions"] == before["sessions"] - 1
    assert after["api_keys"] == before["api_keys"] - 2
    assert (after["resets"], after["verifications"]) == (1, 1)  # bob's, still valid
    kept = await owner.fetch("SELECT id FROM app.api_keys ORDER BY created_at")
    assert {r["id"] for r in kept} == {ids["new_revoked_key"], ids["live_key"]}
    purges = await owner.fetch(
        "SELECT actor, action, entity_id FROM app.audit_log"
        " WHERE action IN ('session.purge', 'api_key.purge') ORDER BY id"
    )
    assert sorted((r["actor"], r["action"], r["entity_id"]) for r in purges) == sorted(
        [
            ("ops", "session.purge", str(ids["expired_session"])),
            ("ops", "api_key.purge", str(ids["expired_key"])),
            ("ops", "api_key.purge", str(ids["old_revoked_key"])),
        ]
    )
    # Idempotent: a second run finds nothing and writes nothing.
    again = await vdata_db.maintenance.cleanup(actor="ops")
    assert again.ran and set(_counts(again).values()) == {0}
    assert await _state(owner) == after


async def test_audit_retention_needs_the_owner_and_then_drops_old_months(
    vdata_db: Any, owner: asyncpg.Connection, vdata_dsn: str
) -> None:
    await _seed(vdata_db, owner)
    before = await _state(owner)
    with pytest.raises(vdata.PermissionDeniedError):
        await vdata_db.maintenance.cleanup(audit_keep_months=3)
    assert await _state(owner) == before  # all or nothing: the deletions rolled back
    async with await connect(vdata_dsn, settings=cheap_settings()) as as_owner:
        report = await as_owner.maintenance.cleanup(audit_keep_months=3)
    assert report.audit_partitions == [OLD_PARTITION] and _counts(report) == EXPECTED
    assert (await _state(owner))["partition"] == 0


async def test_bad_arguments_are_validation_errors(vdata_db: Any) -> None:
    for bad in (
        {"audit_keep_months": 0},
        {"audit_keep_months": True},
        {"sessions_older_than": -1},
        {"revoked_keys_older_than": "30d"},
        {"actor": ""},
    ):
        with pytest.raises(vdata.ValidationError):
            await vdata_db.maintenance.cleanup(**bad)


async def test_a_run_that_finds_the_lock_taken_does_nothing(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    await _seed(vdata_db, owner)
    before = await _state(owner)
    await owner.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        skipped = await vdata_db.maintenance.cleanup()
    finally:
        await owner.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    assert not skipped.ran and set(_counts(skipped).values()) == {0}
    assert await _state(owner) == before
    assert (await vdata_db.maintenance.cleanup()).ran


def _cli(*args: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k != "VDATA_DSN"}
    return subprocess.Popen(
        [str(VDATA), "cleanup", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )


async def test_cli_run_twice_at_once_deletes_each_row_once(
    vdata_db: Any, owner: asyncpg.Connection, vdata_app_dsn: str
) -> None:
    await _seed(vdata_db, owner)
    before = await _state(owner)
    dry = _cli("--dsn", vdata_app_dsn, "--dry-run")
    out, err = dry.communicate(timeout=120)
    assert dry.returncode == 0, err
    assert out.startswith("cleanup would delete: 1 session(s), 1 expired and 1 revoked API key(s)")
    assert await _state(owner) == before

    runs = [_cli("--dsn", vdata_app_dsn, "--json") for _ in range(2)]
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert err == ""
        reports.append(json.loads(out))
    # Either one ran and the other found the lock taken, or the second came
    # after the first had committed and found nothing left: each row once.
    for name, expected in EXPECTED.items():
        assert sum(r[name] for r in reports) == expected, (name, reports)
    assert any(r["ran"] for r in reports)
    purges = await owner.fetchval(
        "SELECT count(*) FROM app.audit_log WHERE action IN ('session.purge', 'api_key.purge')"
    )
    assert purges == 3
    after = await _state(owner)
    assert after["sessions"] == before["sessions"] - 1
    assert after["api_keys"] == before["api_keys"] - 2


def test_cli_refuses_bad_days_with_exit_2() -> None:
    run = _cli("--dsn", "postgresql://127.0.0.1:1/x", "--revoked-keys-older-than-days", "-1")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 2 and "days" in err
