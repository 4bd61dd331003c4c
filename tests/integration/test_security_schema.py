"""The rules of the reset-token and usage-history tables hold for raw SQL as the service role."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.integration._credentials import make_user

pytestmark = pytest.mark.integration


@pytest.fixture
async def app(vdata_app_dsn: str) -> Any:
    """A raw asyncpg connection as the service role."""
    conn = await asyncpg.connect(vdata_app_dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _key(owner: asyncpg.Connection, user_id: UUID) -> UUID:
    key_id = await owner.fetchval(
        "INSERT INTO app.api_keys (user_id, name, prefix, secret_hash, created_by, updated_by)"
        " VALUES ($1, 'ci', 'abcd1234', $2, 'test', 'test') RETURNING id",
        user_id,
        bytes(32),
    )
    assert isinstance(key_id, UUID)
    return key_id


async def test_reset_tokens_are_hashes_unique_one_per_user_and_expire_after_issue(
    app: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    ada = await make_user(owner, "ada")
    bob = await make_user(owner, "bob")
    insert = (
        "INSERT INTO app.password_reset_tokens (user_id, token_hash, expires_at, created_by)"
        " VALUES ($1, $2, now() + make_interval(secs => $3), 'test')"
    )
    await app.execute(insert, ada, b"a" * 32, 3600.0)
    cases = [
        ((ada, b"b" * 32, 3600.0), asyncpg.UniqueViolationError, "pk_password_reset_tokens"),
        (
            (bob, b"a" * 32, 3600.0),
            asyncpg.UniqueViolationError,
            "unique_password_reset_tokens_token_hash",
        ),
        (
            (bob, b"short", 3600.0),
            asyncpg.CheckViolationError,
            "check_password_reset_tokens_token_hash_sha256",
        ),
        (
            (bob, b"c" * 32, -1.0),
            asyncpg.CheckViolationError,
            "check_password_reset_tokens_expires_after_creation",
        ),
        (
            (UUID(int=1), b"d" * 32, 3600.0),
            asyncpg.ForeignKeyViolationError,
            "fk_password_reset_tokens_user_id_users",
        ),
    ]
    for args, error, constraint in cases:
        with pytest.raises(error) as caught:
            await app.execute(insert, *args)
        assert caught.value.constraint_name == constraint
    # A user's tokens go with the user.
    await owner.execute("DELETE FROM app.users WHERE id = $1", ada)
    assert await app.fetchval("SELECT count(*) FROM app.password_reset_tokens") == 0


async def test_usage_days_count_at_least_one_use_of_an_existing_key(
    app: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    key_id = await _key(owner, await make_user(owner, "ada"))
    insert = (
        "INSERT INTO app.api_key_usage_days (api_key_id, used_on, uses, last_used_at)"
        " VALUES ($1, current_date, $2, now())"
    )
    await app.execute(insert, key_id, 3)
    for args, error, constraint in (
        ((key_id, 1), asyncpg.UniqueViolationError, "pk_api_key_usage_days"),
        (
            (UUID(int=1), 1),
            asyncpg.ForeignKeyViolationError,
            "fk_api_key_usage_days_api_key_id_api_keys",
        ),
    ):
        with pytest.raises(error) as caught:
            await app.execute(insert, *args)
        assert caught.value.constraint_name == constraint
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await app.execute(
            "UPDATE app.api_key_usage_days SET uses = 0 WHERE api_key_id = $1", key_id
        )
    assert caught.value.constraint_name == "check_api_key_usage_days_uses_positive"
