"""ApiKeyRepository on a real PostgreSQL, as the service role vdata_app."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import pytest

import vdata
import vdata.repositories
from tests.integration._credentials import all_audit_text, audit_rows, count, make_user
from vdata.models.api_keys import IssuedApiKey
from vdata.queries import load
from vdata.repositories import _api_key_usage as api_keys_module
from vdata.repositories.api_keys import INVALID_API_KEY
from vdata.security.tokens import (
    API_KEY_PATTERN,
    SecretStr,
    hash_secret,
    mint_api_key,
    parse_api_key,
)

pytestmark = pytest.mark.integration

PEPPER = "test-pepper-not-a-real-secret"


@pytest.fixture
def vdata_settings() -> vdata.Settings:
    """Settings with a pepper, so that keys are HMACs as in production."""
    return vdata.Settings.from_env(env={}, secret_key=PEPPER)


@pytest.fixture
async def user_id(owner: asyncpg.Connection) -> UUID:
    return await make_user(owner, "ada")


@pytest.fixture
def db(vdata_db: vdata.Database) -> vdata.Database:
    return vdata_db


async def issue(db: vdata.Database, user_id: UUID, **kw: Any) -> IssuedApiKey:
    kw.setdefault("name", "ci")
    kw.setdefault("scopes", ["read"])
    return await db.api_keys.issue(user_id, actor="admin", **kw)


async def test_issue_returns_token_once_and_stores_only_a_digest(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    issued = await issue(db, user_id, scopes=["read", "write", "read"])
    assert API_KEY_PATTERN.fullmatch(issued.token)
    key = issued.key
    assert (key.user_id, key.name, key.scopes) == (user_id, "ci", ["read", "write"])
    assert (key.use_count, key.version, key.created_by) == (0, 1, "admin")
    assert issued.token.startswith(f"vdk_{key.prefix}_")
    row = await owner.fetchrow("SELECT a::text AS t, secret_hash FROM app.api_keys AS a")
    prefix, secret = parse_api_key(issued.token)
    assert bytes(row["secret_hash"]) == hash_secret(secret, PEPPER)
    assert secret.reveal() not in row["t"] and issued.token not in row["t"]
    events = await audit_rows(owner, "api_key", key.id)
    assert [(e["actor"], e["action"]) for e in events] == [("admin", "api_key.issue")]
    assert f'"prefix": "{prefix}"' in events[0]["after"]


async def test_verify_returns_the_key_and_counts_each_use(
    db: vdata.Database, user_id: UUID
) -> None:
    issued = await issue(db, user_id)
    first = await db.api_keys.verify(issued.token)
    second = await db.api_keys.verify(issued.token)
    # On the pool the uses are buffered: the rows come back as stored.
    assert first.id == second.id == issued.key.id
    assert (first.use_count, second.use_count) == (0, 0)
    assert await db.api_keys.flush_usage() == 1
    assert await db.api_keys.flush_usage() == 0
    stored = await db.api_keys.get(issued.key.id)
    assert stored.use_count == 2 and stored.last_used_at is not None
    assert (await db.api_keys.verify(issued.token)).use_count == 2


async def test_use_count_grows_by_exactly_n_under_concurrent_verifies(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    a = await issue(db, user_id)
    b = await issue(db, user_id)
    tokens = [a.token] * 40 + [b.token] * 7
    results = await asyncio.gather(*(db.api_keys.verify(t) for t in tokens))
    assert len(results) == 47
    await db.api_keys.flush_usage()
    counts = dict(await owner.fetch("SELECT id, use_count FROM app.api_keys"))
    assert counts == {a.key.id: 40, b.key.id: 7}


async def test_buffered_uses_are_written_by_the_timer_and_by_close(
    vdata_app_dsn: str, owner: asyncpg.Connection, user_id: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_keys_module, "USAGE_FLUSH_INTERVAL", 0.05)
    settings = vdata.Settings.from_env(env={}, secret_key=PEPPER)
    async with await vdata.connect(vdata_app_dsn, settings=settings) as db:
        issued = await issue(db, user_id)
        await db.api_keys.verify(issued.token)
        for _ in range(100):  # the timer fires after 50 ms
            await asyncio.sleep(0.01)
            if await owner.fetchval("SELECT use_count FROM app.api_keys") == 1:
                break
        assert await owner.fetchval("SELECT use_count FROM app.api_keys") == 1
        monkeypatch.setattr(api_keys_module, "USAGE_FLUSH_INTERVAL", 3600.0)
        await db.api_keys.verify(issued.token)
        await db.api_keys.verify(issued.token)
    # close() wrote the two uses the hour-long timer had not.
    assert await owner.fetchval("SELECT use_count FROM app.api_keys") == 3


async def test_verify_in_a_transaction_counts_in_the_same_statement(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    issued = await issue(db, user_id)
    async with db.transaction(actor="svc") as tx:
        first = await tx.api_keys.verify(issued.token)
        second = await tx.api_keys.verify(issued.token)
        assert (first.use_count, second.use_count) == (1, 2)
        assert await tx.api_keys.flush_usage() == 0
    with pytest.raises(RuntimeError):
        async with db.transaction(actor="svc") as tx:
            await tx.api_keys.verify(issued.token)
            raise RuntimeError("roll back")
    assert await owner.fetchval("SELECT use_count FROM app.api_keys") == 2
    async with db.transaction(actor="svc") as tx:
        with pytest.raises(vdata.AuthenticationError, match=INVALID_API_KEY):
            await tx.api_keys.verify(_rechecksummed_wrong_secret(issued.token))


def _tampered(token: str) -> str:
    # Change one secret character and keep the checksum: fails the checksum.
    i = len("vdk_") + 8 + 1 + 5
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def _rechecksummed_wrong_secret(token: str) -> str:
    # A well-formed key (valid checksum) with a known prefix but another secret.
    import zlib

    from vdata.security.tokens import _base62

    i = len("vdk_") + 8 + 1 + 5
    body = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 : -6]
    return body + _base62(zlib.crc32(body.encode()), 6)


async def test_verify_rejects_every_bad_key_with_the_same_message(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    good = await issue(db, user_id)
    revoked = await issue(db, user_id)
    await db.api_keys.revoke(revoked.key.id, actor="admin")
    expired = await issue(db, user_id)
    await owner.execute(
        "UPDATE app.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        expired.key.id,
    )
    other = await make_user(owner, "grace")
    inactive = await issue(db, other)
    await owner.execute("UPDATE app.users SET is_active = false WHERE id = $1", other)
    gone = await make_user(owner, "linus")
    deleted_owner = await issue(db, gone)
    await owner.execute(
        "UPDATE app.users SET deleted_at = now(), deleted_by = 'test' WHERE id = $1", gone
    )
    unknown = mint_api_key(PEPPER).token.reveal()
    bad = {
        "unknown": unknown,
        "tampered": _tampered(good.token),
        "wrong secret": _rechecksummed_wrong_secret(good.token),
        "truncated": good.token[:-1],
        "empty": "",
        "garbage": "x" * 10_000,
        "nul": good.token[:-1] + "\x00",
        "revoked": revoked.token,
        "expired": expired.token,
        "owner inactive": inactive.token,
        "owner deleted": deleted_owner.token,
        "not a string": 12345,
    }
    messages = {}
    for label, token in bad.items():
        with pytest.raises(vdata.AuthenticationError) as caught:
            await db.api_keys.verify(token)  # type: ignore[arg-type]
        messages[label] = str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert set(messages.values()) == {INVALID_API_KEY}, messages
    # The transaction path (one UPDATE ... RETURNING) refuses the same keys.
    async with db.transaction(actor="svc") as tx:
        for token in bad.values():
            with pytest.raises(vdata.AuthenticationError, match=INVALID_API_KEY):
                await tx.api_keys.verify(token)  # type: ignore[arg-type]
    # Nothing that failed was counted; the good key still works.
    await db.api_keys.verify(good.token)
    await db.api_keys.flush_usage()
    counts = dict(await owner.fetch("SELECT prefix, use_count FROM app.api_keys"))
    assert counts.pop(good.key.prefix) == 1 and set(counts.values()) == {0}


async def test_scope_checks(db: vdata.Database, user_id: UUID) -> None:
    issued = await issue(db, user_id, scopes=["read", "projects:write"])
    key = await db.api_keys.verify(issued.token, required_scopes=["read"])
    assert key.has_scopes(["read", "projects:write"]) and not key.has_scopes(["admin"])
    await db.api_keys.verify(issued.token, required_scopes=[])
    with pytest.raises(vdata.PermissionDeniedError) as caught:
        await db.api_keys.verify(issued.token, required_scopes=["read", "admin", "billing"])
    assert "admin, billing" in str(caught.value)
    assert issued.token not in str(caught.value) and issued.token not in repr(caught.value)
    # The key authenticated, so its use was recorded all the same.
    await db.api_keys.flush_usage()
    assert (await db.api_keys.get(issued.key.id)).use_count == 3


async def test_rotation_keeps_the_old_key_until_the_grace_deadline(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    old = await issue(db, user_id, scopes=["read", "write"], name="deploy")
    new = await db.api_keys.rotate(old.key.id, grace=3600, actor="admin")
    assert new.key.rotated_from_id == old.key.id
    assert (new.key.name, new.key.scopes, new.key.user_id) == ("deploy", ["read", "write"], user_id)
    assert new.token != old.token and new.key.prefix != old.key.prefix
    old_row = await db.api_keys.get(old.key.id)
    assert old_row.expires_at is not None
    assert timedelta(minutes=59) < old_row.expires_at - old_row.updated_at <= timedelta(hours=1)
    assert (await db.api_keys.verify(old.token)).id == old.key.id  # before the deadline
    assert (await db.api_keys.verify(new.token)).id == new.key.id
    # Move the deadline into the past rather than sleeping through the grace.
    await owner.execute(
        "UPDATE app.api_keys SET expires_at = now() - interval '1 ms' WHERE id = $1", old.key.id
    )
    with pytest.raises(vdata.AuthenticationError, match=INVALID_API_KEY):
        await db.api_keys.verify(old.token)
    assert (await db.api_keys.verify(new.token)).id == new.key.id
    actions = [e["action"] for e in await audit_rows(owner, "api_key", old.key.id)]
    assert actions == ["api_key.issue", "api_key.rotate", "api_key.refuse"]  # expired: refused
    issued_event = await audit_rows(owner, "api_key", new.key.id)
    assert [e["action"] for e in issued_event] == ["api_key.issue"]


async def test_rotation_grace_defaults_to_settings_and_never_extends_an_expiry(
    db: vdata.Database, user_id: UUID
) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=5)
    old = await issue(db, user_id, expires_at=soon)
    new = await db.api_keys.rotate(old.key.id, expires_at=soon + timedelta(days=30), actor="a")
    assert new.key.expires_at == soon + timedelta(days=30)
    assert (await db.api_keys.get(old.key.id)).expires_at == soon  # 24 h grace is later
    zero = await issue(db, user_id)
    await db.api_keys.rotate(zero.key.id, grace=timedelta(0), actor="a")
    with pytest.raises(vdata.AuthenticationError):
        await db.api_keys.verify(zero.token)


async def test_rotating_an_unusable_key_is_not_found(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    revoked = await issue(db, user_id)
    await db.api_keys.revoke(revoked.key.id, actor="admin")
    before = await count(owner, "api_keys"), await count(owner, "audit_log")
    for key_id in (revoked.key.id, uuid4()):
        with pytest.raises(vdata.NotFoundError):
            await db.api_keys.rotate(key_id, actor="admin")
    assert (await count(owner, "api_keys"), await count(owner, "audit_log")) == before


async def test_revoke_is_idempotent_and_audited_once(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    issued = await issue(db, user_id)
    first = await db.api_keys.revoke(issued.key.id, actor="ada")
    again = await db.api_keys.revoke(issued.key.id, actor="ada")
    assert first.revoked_at is not None and again == first
    assert first.updated_by == "ada" and first.version == 2
    events = await audit_rows(owner, "api_key", issued.key.id)
    assert [e["action"] for e in events] == ["api_key.issue", "api_key.revoke"]
    with pytest.raises(vdata.NotFoundError):
        await db.api_keys.revoke(uuid4(), actor="ada")


async def test_revoke_checks_the_owner_when_given(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    issued = await issue(db, user_id)
    intruder = await make_user(owner, "mallory")
    with pytest.raises(vdata.NotFoundError):
        await db.api_keys.revoke(issued.key.id, user_id=intruder, actor="mallory")
    assert (await db.api_keys.verify(issued.token)).id == issued.key.id
    revoked = await db.api_keys.revoke(issued.key.id, user_id=user_id, actor="ada")
    assert revoked.revoked_at is not None


def _scan_for_secrets(value: object, secrets: list[str]) -> None:
    """Fail if any field of a returned Struct is bytes or holds one of *secrets*."""
    assert isinstance(value, msgspec.Struct)
    for name in value.__struct_fields__:
        assert "hash" not in name and "secret" not in name and "token" not in name
        field = getattr(value, name)
        assert not isinstance(field, (bytes, bytearray, memoryview)), name
        for secret in secrets:
            assert secret not in str(field)


async def test_list_by_owner_never_returns_secrets(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    first = await issue(db, user_id, name="one")
    second = await issue(db, user_id, name="two")
    await issue(db, await make_user(owner, "someone"), name="not theirs")
    await db.api_keys.revoke(second.key.id, actor="ada")
    keys = await db.api_keys.list_by_owner(user_id)
    assert [k.name for k in keys] == ["one", "two"]
    usable = await db.api_keys.list_by_owner(user_id, usable_only=True)
    assert [k.id for k in usable] == [first.key.id]
    digests = [bytes(r[0]).hex() for r in await owner.fetch("SELECT secret_hash FROM app.api_keys")]
    secrets = [
        first.token,
        second.token,
        *(parse_api_key(t.token)[1].reveal() for t in (first, second)),
        *digests,
    ]
    for key in keys:
        _scan_for_secrets(key, secrets)
        assert all(s not in repr(key) for s in secrets)
        assert all(s not in msgspec.json.encode(key).decode() for s in secrets)
    audit_text = await all_audit_text(owner)
    assert all(s not in audit_text for s in secrets)


async def test_cleanup_deletes_only_expired_keys_and_audits_each(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    live = await issue(db, user_id)
    old = await issue(db, user_id)
    recent = await issue(db, user_id)
    await owner.execute(
        "UPDATE app.api_keys SET expires_at = now() - interval '2 days' WHERE id = $1", old.key.id
    )
    await owner.execute(
        "UPDATE app.api_keys SET expires_at = now() - interval '1 hour' WHERE id = $1",
        recent.key.id,
    )
    successor = await owner.fetchval(
        "UPDATE app.api_keys SET rotated_from_id = $1 WHERE id = $2 RETURNING id",
        old.key.id,
        live.key.id,
    )
    assert successor == live.key.id
    assert await db.api_keys.cleanup_expired(older_than=timedelta(days=1), actor="cron") == 1
    assert await db.api_keys.cleanup_expired(actor="cron") == 1
    assert await db.api_keys.cleanup_expired(actor="cron") == 0
    remaining = await db.api_keys.list_by_owner(user_id)
    assert [k.id for k in remaining] == [live.key.id]
    assert remaining[0].rotated_from_id is None
    for gone in (old, recent):
        events = await audit_rows(owner, "api_key", gone.key.id)
        assert [(e["actor"], e["action"]) for e in events][-1] == ("cron", "api_key.purge")


async def test_usage_totals_per_owner(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    empty = await db.api_keys.usage(user_id)
    assert (empty.key_count, empty.usable_key_count, empty.total_uses) == (0, 0, 0)
    assert empty.last_used_at is None and empty.user_id == user_id
    a = await issue(db, user_id)
    b = await issue(db, user_id)
    for _ in range(3):
        await db.api_keys.verify(a.token)
    await db.api_keys.verify(b.token)
    await db.api_keys.revoke(b.key.id, actor="ada")
    usage = await db.api_keys.usage(user_id)
    assert (usage.key_count, usage.usable_key_count, usage.total_uses) == (2, 1, 4)
    assert usage.last_used_at == (await db.api_keys.get(b.key.id)).last_used_at


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "ci\x00"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": ""}, "name"),
        ({"name": " padded "}, "name"),
        ({"scopes": ["read", "bad scope"]}, "scopes"),
        ({"scopes": ["r\x00"]}, "scopes"),
        ({"scopes": "read"}, "scopes"),
        ({"scopes": [f"s{i}" for i in range(65)]}, "scopes"),
        ({"expires_at": datetime(2100, 1, 1)}, "expires_at"),
    ],
)
async def test_bad_input_is_a_validation_error_and_writes_nothing(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(vdata.ValidationError) as caught:
        await issue(db, user_id, **kwargs)
    assert caught.value.field == field
    assert await count(owner, "api_keys") == 0
    assert await count(owner, "audit_log") == 0


async def test_writes_need_an_actor_and_use_the_transactions(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    with pytest.raises(vdata.ValidationError):
        await db.api_keys.issue(user_id, name="ci")
    async with db.transaction(actor="ada") as tx:
        issued = await tx.api_keys.issue(user_id, name="ci", scopes=["read"])
        assert (await tx.api_keys.verify(issued.token)).created_by == "ada"
    assert [e["actor"] for e in await audit_rows(owner, "api_key", issued.key.id)] == ["ada"]


async def test_issue_for_a_missing_or_deleted_user_is_not_found(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    with pytest.raises(vdata.NotFoundError):
        await issue(db, uuid4())
    await owner.execute(
        "UPDATE app.users SET deleted_at = now(), deleted_by = 'test' WHERE id = $1", user_id
    )
    with pytest.raises(vdata.NotFoundError):
        await issue(db, user_id)
    assert await count(owner, "api_keys") == 0


@pytest.mark.parametrize(
    "payload",
    [
        "x'); DROP TABLE app.api_keys; --",
        "' OR '1'='1",
        "<script>alert(1)</script>",
        "$1 :name %s {0}",
        "Ünïcödé ☃ 名前",
    ],
)
async def test_injection_payloads_are_stored_verbatim(
    db: vdata.Database, user_id: UUID, payload: str
) -> None:
    issued = await issue(db, user_id, name=payload)
    assert issued.key.name == payload
    assert [k.name for k in await db.api_keys.list_by_owner(user_id)] == [payload]
    assert (await db.api_keys.verify(issued.token)).name == payload


async def test_no_token_or_digest_in_repr_errors_or_logs(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issued = await issue(db, user_id)
    _, secret = parse_api_key(issued.token)
    digest = hash_secret(secret, PEPPER)
    secrets = [issued.token, secret.reveal(), digest.hex(), repr(digest)]
    texts = [repr(issued), str(issued), repr(issued.key), str(issued.key), repr(db.api_keys)]
    for bad in (issued.token[:-1], _rechecksummed_wrong_secret(issued.token), issued.token + "x"):
        with pytest.raises(vdata.AuthenticationError) as caught:
            await db.api_keys.verify(bad)
        texts += [str(caught.value), repr(caught.value)]
    with pytest.raises(vdata.PermissionDeniedError) as denied:
        await db.api_keys.verify(issued.token, required_scopes=["admin"])
    texts += [str(denied.value), repr(denied.value)]
    texts += [r.getMessage() for r in caplog.records]
    assert "**********" in repr(issued)
    for text in texts:
        for s in secrets:
            assert s not in text


async def test_verify_accepts_a_secretstr(db: vdata.Database, user_id: UUID) -> None:
    issued = await issue(db, user_id)
    assert (await db.api_keys.verify(SecretStr(issued.token))).id == issued.key.id


async def test_get_unknown_key_is_not_found(db: vdata.Database) -> None:
    with pytest.raises(vdata.NotFoundError):
        await db.api_keys.get(uuid4())


@pytest.mark.parametrize("name", [q.name for q in load() if q.name.startswith("api_keys.")])
async def test_query_columns_match_the_struct_fields(owner: asyncpg.Connection, name: str) -> None:
    q = {bound.name: bound for bound in load()}[name]  # the repository's binding, if any
    stmt = await owner.prepare(q.sql)
    columns = [a.name for a in stmt.get_attributes()]
    fields = getattr(q.struct, "__struct_fields__", None)  # a `$` query binds a scalar type
    if fields is not None:
        assert columns == list(fields)
    assert not {"secret_hash", "token_hash"} & set(columns)
    assert q.doc, "every query says what it returns"


async def test_verify_is_one_round_trip_on_the_pool_and_in_a_transaction(
    db: vdata.Database, user_id: UUID
) -> None:
    issued = await issue(db, user_id, scopes=["read"])
    before = db.counters.queries
    await db.api_keys.verify(issued.token, required_scopes=["read"])
    assert db.counters.queries == before + 1
    async with db.transaction(actor="svc") as tx:
        before = db.counters.queries
        await tx.api_keys.verify(issued.token)
        assert db.counters.queries == before + 1
