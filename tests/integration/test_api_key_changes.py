"""API keys after issue, on a real PostgreSQL: changes, usage per day, refused keys."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

import vdata
from tests.integration._credentials import audit_rows, count, make_user
from tests.integration._users import cheap_settings
from vdata.queries import load
from vdata.security.tokens import mint_api_key

pytestmark = pytest.mark.integration

PEPPER = "test-pepper-not-a-real-secret"


@pytest.fixture
def vdata_settings() -> vdata.Settings:
    """A pepper, so that keys are HMACs as in production; cheap argon2; lockout after 3."""
    return cheap_settings(secret_key=PEPPER)


@pytest.fixture
async def user_id(owner: asyncpg.Connection) -> UUID:
    return await make_user(owner, "ada")


async def test_update_changes_name_and_scopes_with_the_optimistic_lock(
    vdata_db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    issued = await vdata_db.api_keys.issue(user_id, name="ci", scopes=["read"], actor="admin")
    key = issued.key
    renamed = await vdata_db.api_keys.update(
        key.id, expected_version=key.version, name="deploy", actor="ada"
    )
    assert (renamed.name, renamed.scopes, renamed.version) == ("deploy", ["read"], 2)
    assert renamed.updated_by == "ada"
    rescoped = await vdata_db.api_keys.update(
        key.id, expected_version=2, scopes=["read", "write", "read"], actor="ada"
    )
    assert (rescoped.name, rescoped.scopes, rescoped.version) == ("deploy", ["read", "write"], 3)
    assert (await vdata_db.api_keys.verify(issued.token, required_scopes=["write"])).id == key.id

    events = [
        e for e in await audit_rows(owner, "api_key", key.id) if e["action"] == "api_key.update"
    ]
    assert [(e["actor"], json.loads(e["before"]), json.loads(e["after"])) for e in events] == [
        (
            "ada",
            {"name": "ci", "scopes": ["read"]},
            {"name": "deploy", "scopes": ["read"], "version": 2},
        ),
        (
            "ada",
            {"name": "deploy", "scopes": ["read"]},
            {"name": "deploy", "scopes": ["read", "write"], "version": 3},
        ),
    ]

    audit_before = await count(owner, "audit_log")
    with pytest.raises(vdata.StaleVersionError):
        await vdata_db.api_keys.update(key.id, expected_version=2, name="x", actor="ada")
    with pytest.raises(vdata.NotFoundError):
        await vdata_db.api_keys.update(uuid4(), expected_version=1, name="x", actor="ada")
    for bad in (
        {"name": ""},
        {"name": "x" * 201},
        {"name": "a\x00b"},
        {"scopes": ["no spaces"]},
        {"scopes": "read"},
        {"scopes": [f"s{i}" for i in range(65)]},
        {},
    ):
        with pytest.raises(vdata.ValidationError):
            await vdata_db.api_keys.update(key.id, expected_version=3, actor="ada", **bad)
    with pytest.raises(vdata.ValidationError):
        await vdata_db.api_keys.update(key.id, expected_version="3", name="x", actor="ada")  # type: ignore[arg-type]
    with pytest.raises(vdata.ValidationError):
        await vdata_db.api_keys.update(key.id, expected_version=3, name="x")  # no actor
    await vdata_db.api_keys.revoke(key.id, actor="admin")
    with pytest.raises(vdata.NotFoundError):  # a revoked key does not change
        await vdata_db.api_keys.update(key.id, expected_version=3, name="x", actor="ada")
    assert await count(owner, "audit_log") == audit_before + 1  # the revoke only
    assert (await vdata_db.api_keys.get(key.id)).name == "deploy"


async def test_usage_history_per_day_agrees_with_the_counters(
    vdata_db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    issued = await vdata_db.api_keys.issue(user_id, name="ci", actor="admin")
    other = await vdata_db.api_keys.issue(user_id, name="other", actor="admin")
    for _ in range(3):
        await vdata_db.api_keys.verify(issued.token)  # pooled: counted in batches
    async with vdata_db.transaction(actor="svc") as tx:
        await tx.api_keys.verify(issued.token)  # in a transaction: one UPDATE
    await vdata_db.api_keys.verify(other.token)
    # Yesterday's uses, as the counting statements would have written them.
    await owner.execute(
        "INSERT INTO app.api_key_usage_days (api_key_id, used_on, uses, last_used_at)"
        " VALUES ($1, (now() AT TIME ZONE 'UTC')::date - 1, 5, now() - interval '1 day')",
        issued.key.id,
    )
    history = await vdata_db.api_keys.usage_history(issued.key.id)
    today = await owner.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    assert [(d.used_on, d.uses) for d in history] == [(today - timedelta(days=1), 5), (today, 4)]
    key = await vdata_db.api_keys.get(issued.key.id)
    assert key.use_count == 4 and key.last_used_at == history[-1].last_used_at
    only_today = await vdata_db.api_keys.usage_history(issued.key.id, since=today)
    assert [(d.used_on, d.uses) for d in only_today] == [(today, 4)]
    assert await vdata_db.api_keys.usage_history(issued.key.id, until=today - timedelta(1)) == []
    assert await vdata_db.api_keys.usage_history(uuid4()) == []
    for bad in ({"since": "2024-01-01"}, {"until": datetime.now(UTC)}):
        with pytest.raises(vdata.ValidationError):
            await vdata_db.api_keys.usage_history(issued.key.id, **bad)
    # The history goes with its key.
    await owner.execute("DELETE FROM app.api_keys WHERE id = $1", issued.key.id)
    assert (
        await owner.fetchval(
            "SELECT count(*) FROM app.api_key_usage_days WHERE api_key_id = $1", issued.key.id
        )
        == 0
    )
    assert isinstance(today, date)


async def test_refused_keys_are_audited_with_a_reason_unknown_prefixes_are_not(
    vdata_db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    good = await vdata_db.api_keys.issue(user_id, name="ci", scopes=["read"], actor="admin")
    revoked = await vdata_db.api_keys.issue(user_id, name="old", actor="admin")
    await vdata_db.api_keys.revoke(revoked.key.id, actor="admin")
    prefix = good.key.prefix
    stranger = mint_api_key(PEPPER).token.reveal()  # a prefix no key has
    before = await count(owner, "audit_log")
    for token in (stranger, "vdk_garbage", ""):
        with pytest.raises(vdata.AuthenticationError):
            await vdata_db.api_keys.verify(token)
    assert await count(owner, "audit_log") == before  # nothing to review, nothing written

    with pytest.raises(vdata.AuthenticationError):
        await vdata_db.api_keys.verify(revoked.token)
    with pytest.raises(vdata.PermissionDeniedError):
        await vdata_db.api_keys.verify(good.token, required_scopes=["admin"])
    reasons = {
        json.loads(e["after"])["reason"]
        for e in await audit_rows(owner, "api_key", revoked.key.id)
        if e["action"] == "api_key.refuse"
    }
    assert reasons == {"revoked"}
    expired = await vdata_db.api_keys.issue(user_id, name="gone", actor="admin")
    await owner.execute(
        "UPDATE app.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        expired.key.id,
    )
    with pytest.raises(vdata.AuthenticationError):
        await vdata_db.api_keys.verify(expired.token)
    # A well-formed key with a known prefix and another secret.
    refuse = load().bind("api_keys.record_api_key_refusal", int)
    assert (
        await vdata_db.api_keys.value(refuse, prefix=prefix, secret_hash=bytes(32), reason=None)
        == 1
    )
    refusals = [
        e
        for e in await audit_rows(owner, "api_key", good.key.id)
        if e["action"] == "api_key.refuse"
    ]
    assert [(e["actor"], json.loads(e["after"])["reason"]) for e in refusals] == [
        (f"vdk_{prefix}", "missing_scope"),
        (f"vdk_{prefix}", "wrong_secret"),
    ]
    expired_refusals = await audit_rows(owner, "api_key", expired.key.id)
    assert json.loads(expired_refusals[-1]["after"])["reason"] == "expired"


async def test_security_events_list_failed_logins_lockouts_and_refused_keys(
    vdata_db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    users = vdata_db.users
    ada = await users.create(
        vdata.NewUser(username="bob", email="bob@example.org", password="correct horse battery"),
        actor="admin",
    )
    for _ in range(3):  # the third failure locks the account
        with pytest.raises(vdata.AuthenticationError):
            await users.authenticate("bob", "wrong password!")
    key = await vdata_db.api_keys.issue(user_id, name="ci", actor="admin")
    await vdata_db.api_keys.revoke(key.key.id, actor="admin")
    with pytest.raises(vdata.AuthenticationError):
        await vdata_db.api_keys.verify(key.token)

    first = await vdata_db.audit.security_events(since=started, limit=2)
    assert len(first.items) == 2 and first.next_cursor is not None
    rest = await vdata_db.audit.security_events(since=started, cursor=first.next_cursor, limit=50)
    events = first.items + rest.items
    assert rest.next_cursor is None
    assert [e.occurred_at for e in events] == sorted((e.occurred_at for e in events), reverse=True)
    actions = [e.action for e in events]
    assert actions[0] == "api_key.refuse"
    assert "user.lock" in actions and "user.login_failed" in actions
    assert set(actions) <= {"api_key.refuse", "user.lock", "user.login_failed"}
    assert all(e.entity_id in {str(ada.id), str(key.key.id)} for e in events)
    assert (await vdata_db.audit.security_events(until=started)).items == []
    with pytest.raises(vdata.ValidationError):
        await vdata_db.audit.security_events(since=datetime(2026, 1, 1))  # naive
    with pytest.raises(vdata.ValidationError):
        await vdata_db.audit.security_events(cursor="tampered")


async def test_stats_by_actor_and_by_entity_type(
    vdata_db: vdata.Database, owner: asyncpg.Connection, user_id: UUID
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    for name in ("a", "b", "c"):
        await vdata_db.api_keys.issue(user_id, name=name, actor="alice")
    await vdata_db.api_keys.issue(user_id, name="d", actor="bob")
    session = await vdata_db.sessions.create(user_id, actor="bob")
    by_actor = await vdata_db.audit.stats_by_actor(since=started)
    assert [(s.actor, s.events) for s in by_actor] == [("alice", 3), ("bob", 2)]
    assert all(s.first_at <= s.last_at for s in by_actor)
    by_type = await vdata_db.audit.stats_by_entity_type(since=started)
    assert [(s.entity_type, s.events, s.actors) for s in by_type] == [
        ("api_key", 4, 2),
        ("session", 1, 1),
    ]
    assert await vdata_db.audit.stats_by_actor(until=started) == []
    with pytest.raises(vdata.ValidationError):
        await vdata_db.audit.stats_by_entity_type(since=datetime(2026, 1, 1))  # naive
    assert session.session.user_id == user_id
