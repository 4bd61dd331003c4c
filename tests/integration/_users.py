"""Helpers for the users and roles tests: cheap argon2 settings, owner reads, secret scans."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from vdata.models.users import NewUser
from vdata.settings import Settings

# Cheap argon2 parameters: the tests check behaviour, not hashing cost (one
# test measures the cost with the defaults on purpose).
CHEAP = {
    "argon2_time_cost": 1,
    "argon2_memory_cost_kib": 1024,
    "argon2_parallelism": 1,
    "lockout_threshold": 3,
    "lockout_minutes": 15.0,
}
PASSWORD = "correct horse battery staple"


def cheap_settings(**overrides: Any) -> Settings:
    """Return default settings with cheap argon2 parameters and a lockout after 3 failures."""
    return Settings.from_env(env={}, **{**CHEAP, **overrides})


def new_user(name: str = "ada", **fields: Any) -> NewUser:
    """Return a NewUser named *name* with a password that passes the policy."""
    values: dict[str, Any] = {
        "username": name,
        "email": f"{name}@example.org",
        "password": PASSWORD,
        "full_name": name.title(),
    }
    values.update(fields)
    return NewUser(**values)


async def audit_events(owner: asyncpg.Connection, entity_id: object) -> list[asyncpg.Record]:
    """Return (actor, action, before, after, ip) of one entity's audit rows, oldest first."""
    return list(
        await owner.fetch(
            "SELECT actor, action, before::text, after::text, host(ip) AS ip"
            " FROM app.audit_log WHERE entity_id = $1 ORDER BY id",
            str(entity_id),
        )
    )


async def count_rows(owner: asyncpg.Connection, table: str) -> int:
    """Return how many rows app.<table> holds (*table* is a fixed name from the test)."""
    assert table in {"users", "audit_log", "sessions", "roles", "permissions", "user_roles"}
    return int(await owner.fetchval(f"SELECT count(*) FROM app.{table}"))


async def all_audit_text(owner: asyncpg.Connection) -> str:
    """Return the whole audit log as text."""
    rows = await owner.fetch("SELECT a::text FROM app.audit_log AS a")
    return "\n".join(str(r[0]) for r in rows)


def assert_no_secret(secrets: list[str], *texts: str) -> None:
    """Fail if any of *secrets* occurs in any of *texts*."""
    for secret in secrets:
        for text in texts:
            assert secret not in text, "a secret leaked into repr/str/error/log text"


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Return every captured log record, message and arguments, as one text."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


__all__ = [
    "CHEAP",
    "PASSWORD",
    "all_audit_text",
    "assert_no_secret",
    "audit_events",
    "cheap_settings",
    "count_rows",
    "log_text",
    "new_user",
]
