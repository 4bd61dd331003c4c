"""SessionRepository on a real PostgreSQL, as the service role vdata_app."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import pytest

import vdata
import vdata.repositories
from tests.integration._credentials import all_audit_text, audit_rows, count, make_user
from vdata.models.sessions import IssuedSession
from vdata.queries import load
from vdata.repositories.sessions import INVALID_SESSION
from vdata.security.tokens import SecretStr, hash_token

pytestmark = pytest.mark.integration


@pytest.fixture
async def user_id(owner: asyncpg.Connection) -> UUID:
    return await make_user(owner, "ada")


@pytest.fixture
def db(vdata_db: vdata.Database) -> vdata.Database:
    return vdata_db


async def login(db: vdata.Database, user_id: UUID, **kw: Any) -> IssuedSession:
    return await db.sessions.create(user_id, actor="ada", **kw)


async def test_create_returns_the_token_once_and_stores_its_digest(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    issued = await login(db, user_id, ip="203.0.113.7", user_agent="curl/8.5")
    s = issued.session
    assert (s.user_id, s.ip, s.user_agent, s.revoked_at) == (
        user_id,
        IPv4Address("203.0.113.7"),
        "curl/8.5",
        None,
    )
    assert len(issued.token) >= 43
    # The default ttl comes from Settings.session_ttl (24 h).
    assert timedelta(hours=23, minutes=59) < s.expires_at - s.created_at <= timedelta(hours=24)
    row = await owner.fetchrow("SELECT s::text AS t, token_hash FROM app.sessions AS s")
    assert bytes(row["token_hash"]) == hash_token(issued.token)
    assert issued.token not in row["t"]
    events = await audit_rows(owner, "session", s.id)
    assert [(e["actor"], e["action"], str(e["ip"])) for e in events] == [
        ("ada", "session.create", "203.0.113.7")
    ]
    assert issued.token not in await all_audit_text(owner)
    assert bytes(row["token_hash"]).hex() not in await all_audit_text(owner)


async def test_validate_returns_the_session_and_touches_last_seen(
    db: vdata.Database, user_id: UUID
) -> None:
    issued = await login(db, user_id, ip="2001:db8::1", ttl=timedelta(minutes=5))
    seen = await db.sessions.validate(issued.token)
    assert seen.id == issued.session.id and seen.ip == IPv6Address("2001:db8::1")
    assert seen.last_seen_at > issued.session.last_seen_at
    again = await db.sessions.validate(SecretStr(issued.token))
    assert again.last_seen_at >= seen.last_seen_at


async def test_validate_rejects_every_bad_token_with_the_same_message(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    revoked = await login(db, user_id)
    await db.sessions.revoke(revoked.session.id, actor="ada")
    expired = await login(db, user_id)
    await owner.execute(
        "UPDATE app.sessions SET expires_at = now() - interval '1 ms' WHERE id = $1",
        expired.session.id,
    )
    other = await make_user(owner, "grace")
    inactive = await login(db, other)
    await owner.execute("UPDATE app.users SET is_active = false WHERE id = $1", other)
    gone = await make_user(owner, "linus")
    deleted = await login(db, gone)
    await owner.execute(
        "UPDATE app.users SET deleted_at = now(), deleted_by = 'test' WHERE id = $1", gone
    )
    good = await login(db, user_id)
    bad: dict[str, Any] = {
        "unknown": "x" * 43,
        "tampered": good.token[:-1] + ("A" if good.token[-1] != "A" else "B"),
        "empty": "",
        "huge": "x" * 100_000,
        "nul": "\x00" * 43,
        "revoked": revoked.token,
        "expired": expired.token,
        "user inactive": inactive.token,
        "user deleted": deleted.token,
        "not a string": None,
    }
    messages = {}
    for label, token in bad.items():
        with pytest.raises(vdata.AuthenticationError) as caught:
            await db.sessions.validate(token)
        messages[label] = str(caught.value)
        assert caught.value.__context__ is None
    assert set(messages.values()) == {INVALID_SESSION}, messages
    assert (await db.sessions.validate(good.token)).id == good.session.id


async def test_revoke_is_idempotent_owner_checked_and_audited_once(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    issued = await login(db, user_id)
    intruder = await make_user(owner, "mallory")
    with pytest.raises(vdata.NotFoundError):
        await db.sessions.revoke(issued.session.id, user_id=intruder, actor="mallory")
    first = await db.sessions.revoke(issued.session.id, user_id=user_id, actor="ada")
    again = await db.sessions.revoke(issued.session.id, actor="admin")
    assert first.revoked_at is not None and again == first and first.updated_by == "ada"
    events = await audit_rows(owner, "session", issued.session.id)
    assert [e["action"] for e in events] == ["session.create", "session.revoke"]
    with pytest.raises(vdata.AuthenticationError):
        await db.sessions.validate(issued.token)
    with pytest.raises(vdata.NotFoundError):
        await db.sessions.revoke(uuid4(), actor="ada")
    assert (await db.sessions.get(issued.session.id)).revoked_at == first.revoked_at
    with pytest.raises(vdata.NotFoundError):
        await db.sessions.get(uuid4())


async def test_revoke_all_for_user_spares_the_exception_and_other_users(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    keep = await login(db, user_id)
    doomed = [await login(db, user_id) for _ in range(3)]
    stranger = await login(db, await make_user(owner, "grace"))
    assert (
        await db.sessions.revoke_all_for_user(user_id, except_id=keep.session.id, actor="ada") == 3
    )
    assert (
        await db.sessions.revoke_all_for_user(user_id, except_id=keep.session.id, actor="ada") == 0
    )
    for issued in doomed:
        with pytest.raises(vdata.AuthenticationError):
            await db.sessions.validate(issued.token)
        actions = [e["action"] for e in await audit_rows(owner, "session", issued.session.id)]
        assert actions == ["session.create", "session.revoke"]
    assert (await db.sessions.validate(keep.token)).id == keep.session.id
    assert (await db.sessions.validate(stranger.token)).id == stranger.session.id
    assert await db.sessions.revoke_all_for_user(user_id, actor="ada") == 1


async def test_list_active_excludes_revoked_and_expired_and_holds_no_secret(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    a = await login(db, user_id, user_agent="a")
    b = await login(db, user_id, user_agent="b")
    revoked = await login(db, user_id)
    expired = await login(db, user_id)
    await login(db, await make_user(owner, "grace"))
    await db.sessions.revoke(revoked.session.id, actor="ada")
    await owner.execute(
        "UPDATE app.sessions SET expires_at = now() - interval '1 ms' WHERE id = $1",
        expired.session.id,
    )
    await db.sessions.validate(a.token)  # seen last: listed first
    active = await db.sessions.list_active(user_id)
    assert [s.user_agent for s in active] == ["a", "b"]
    secrets = [x.token for x in (a, b, revoked, expired)]
    secrets += [hash_token(t).hex() for t in secrets]
    for s in active:
        for name in s.__struct_fields__:
            assert "token" not in name and "hash" not in name
            assert not isinstance(getattr(s, name), bytes)
        text = msgspec.json.encode(s).decode() + repr(s)
        assert all(x not in text for x in secrets)


async def test_cleanup_deletes_expired_and_revoked_sessions_and_audits_each(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    live = await login(db, user_id)
    expired = await login(db, user_id)
    revoked = await login(db, user_id)
    await db.sessions.revoke(revoked.session.id, actor="ada")
    await owner.execute(
        "UPDATE app.sessions SET expires_at = now() - interval '2 hours' WHERE id = $1",
        expired.session.id,
    )
    assert await db.sessions.cleanup_expired(older_than=timedelta(hours=1), actor="cron") == 1
    assert await db.sessions.cleanup_expired(actor="cron") == 1
    assert await db.sessions.cleanup_expired(actor="cron") == 0
    assert [s.id for s in await db.sessions.list_active(user_id)] == [live.session.id]
    assert await count(owner, "sessions") == 1
    for gone in (expired, revoked):
        events = await audit_rows(owner, "session", gone.session.id)
        assert (events[-1]["actor"], events[-1]["action"]) == ("cron", "session.purge")


async def test_concurrent_validations_all_succeed(db: vdata.Database, user_id: UUID) -> None:
    issued = await login(db, user_id)
    seen = await asyncio.gather(*(db.sessions.validate(issued.token) for _ in range(30)))
    assert {s.id for s in seen} == {issued.session.id}
    assert max(s.version for s in seen) == 31  # each touch is one UPDATE


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user_agent": "curl\x00"}, "user_agent"),
        ({"user_agent": "x" * 1001}, "user_agent"),
        ({"ip": "not-an-ip"}, "ip"),
        ({"ip": "10.0.0.0/8"}, "ip"),
        ({"ip": "1.2.3.4\x00"}, "ip"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": -5}, "ttl"),
        ({"ttl": timedelta(days=400)}, "ttl"),
    ],
)
async def test_bad_input_is_a_validation_error_and_writes_nothing(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(vdata.ValidationError) as caught:
        await login(db, user_id, **kwargs)
    assert caught.value.field == field
    assert await count(owner, "sessions") == 0
    assert await count(owner, "audit_log") == 0


async def test_create_needs_an_active_user_and_an_actor(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    with pytest.raises(vdata.NotFoundError):
        await login(db, uuid4())
    await owner.execute("UPDATE app.users SET is_active = false WHERE id = $1", user_id)
    with pytest.raises(vdata.NotFoundError):
        await login(db, user_id)
    with pytest.raises(vdata.ValidationError):
        await db.sessions.create(user_id)
    assert await count(owner, "sessions") == 0


@pytest.mark.parametrize(
    "payload", ["'); DELETE FROM app.sessions; --", "<img src=x onerror=alert(1)>", "Mozilla/5.0 ☃"]
)
async def test_injection_payloads_in_user_agent_are_stored_verbatim(
    db: vdata.Database, user_id: UUID, payload: str
) -> None:
    issued = await login(db, user_id, user_agent=payload)
    assert (await db.sessions.validate(issued.token)).user_agent == payload


async def test_transaction_actor_and_rollback(
    db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    async with db.transaction(actor="ada") as tx:
        kept = await tx.sessions.create(user_id)
    assert kept.session.created_by == "ada"
    with pytest.raises(RuntimeError):
        async with db.transaction(actor="ada") as tx:
            await tx.sessions.create(user_id)
            raise RuntimeError("abort")
    assert await count(owner, "sessions") == 1
    assert len(await audit_rows(owner, "session", kept.session.id)) == 1


async def test_no_token_in_repr_errors_or_logs(
    db: vdata.Database, user_id: UUID, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issued = await login(db, user_id)
    secrets = [issued.token, hash_token(issued.token).hex()]
    texts = [repr(issued), str(issued), repr(issued.session), repr(db.sessions)]
    for bad in (issued.token + "x", issued.token[1:]):
        with pytest.raises(vdata.AuthenticationError) as caught:
            await db.sessions.validate(bad)
        texts += [str(caught.value), repr(caught.value)]
    texts += [r.getMessage() for r in caplog.records]
    assert "**********" in repr(issued)
    assert all(s not in t for s in secrets for t in texts)


@pytest.mark.parametrize("name", [q.name for q in load() if q.name.startswith("sessions.")])
async def test_query_columns_match_the_struct_fields(owner: asyncpg.Connection, name: str) -> None:
    q = {bound.name: bound for bound in load()}[name]  # the repository's binding, if any
    stmt = await owner.prepare(q.sql)
    columns = [a.name for a in stmt.get_attributes()]
    fields = getattr(q.struct, "__struct_fields__", None)  # a `$` query binds a scalar type
    if fields is not None:
        assert columns == list(fields)
    assert "token_hash" not in columns
    assert q.doc
