"""Owner-side helpers for the api_keys and sessions tests: users, raw reads, audit rows."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

# A syntactically valid argon2id PHC string (check_users_password_hash_argon2);
# these tests never log in with a password.
_FAKE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


async def make_user(owner: asyncpg.Connection, username: str = "ada") -> UUID:
    """Insert an active user straight into app.users; return its id."""
    user_id = await owner.fetchval(
        "INSERT INTO app.users (username, email, password_hash, created_by, updated_by)"
        " VALUES ($1, $2, $3, 'test', 'test') RETURNING id",
        username,
        f"{username}@example.org",
        _FAKE_HASH,
    )
    assert isinstance(user_id, UUID)
    return user_id


async def audit_rows(owner: asyncpg.Connection, entity_type: str, entity_id: object) -> list[Any]:
    """Return the audit rows of one entity, oldest first."""
    return list(
        await owner.fetch(
            "SELECT actor, action, before, after, ip FROM app.audit_log"
            " WHERE entity_type = $1 AND entity_id = $2 ORDER BY id",
            entity_type,
            str(entity_id),
        )
    )


async def all_audit_text(owner: asyncpg.Connection) -> str:
    """Return every audit row as text, to scan for secrets."""
    rows = await owner.fetch("SELECT a::text FROM app.audit_log AS a")
    return "\n".join(str(r[0]) for r in rows)


async def count(owner: asyncpg.Connection, table: str) -> int:
    """Return the number of rows of app.<table> (a fixed name from the test)."""
    assert table in {"api_keys", "sessions", "audit_log"}
    return int(await owner.fetchval(f"SELECT count(*) FROM app.{table}"))
