"""Password reset and administrative unlock on a real PostgreSQL."""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from typing import Any

import pytest

from tests.integration._users import (
    PASSWORD,
    all_audit_text,
    assert_no_secret,
    audit_events,
    cheap_settings,
    log_text,
    new_user,
)
from vdata import (
    AccountLockedError,
    AuthenticationError,
    NotFoundError,
    ValidationError,
    connect,
)
from vdata.repositories.users import INVALID_RESET
from vdata.security.passwords import PasswordHasher

pytestmark = pytest.mark.integration

NEW_PASSWORD = "an0ther long passphrase"


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters; lockout after 3 failures."""
    return cheap_settings()


async def _lock(db: Any, login: str) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await db.users.authenticate(login, "wrong password!")


async def test_reset_sets_the_password_clears_the_lock_and_revokes_what_was_chosen(
    vdata_db: Any, owner: Any
) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    phone = await vdata_db.sessions.create(user.id, actor="ada")
    laptop = await vdata_db.sessions.create(user.id, actor="ada")
    ci = await vdata_db.api_keys.issue(user.id, name="ci", actor="ada")
    deploy = await vdata_db.api_keys.issue(user.id, name="deploy", actor="ada")
    await _lock(vdata_db, "ada")
    with pytest.raises(AccountLockedError):
        await vdata_db.users.authenticate("ada", PASSWORD)

    issued = await vdata_db.users.issue_password_reset("ADA@example.org", ip="192.0.2.7")
    assert issued is not None and issued.user.id == user.id
    assert issued.token not in repr(issued) and issued.token not in str(issued)
    stored = await owner.fetchrow(
        "SELECT token_hash, expires_at FROM app.password_reset_tokens WHERE user_id = $1", user.id
    )
    assert issued.token.encode() not in bytes(stored["token_hash"])
    assert stored["expires_at"] == issued.expires_at
    assert (await vdata_db.users.password_reset_user(issued.token)).id == user.id

    reset = await vdata_db.users.reset_password(
        issued.token,
        NEW_PASSWORD,
        revoke_sessions=[phone.session.id],
        revoke_api_keys=[ci.key.id],
        ip="192.0.2.7",
    )
    assert reset.failed_login_count == 0 and reset.locked_until is None
    assert reset.updated_by == "ada" and reset.password_changed_at > user.password_changed_at
    assert (await vdata_db.users.authenticate("ada", NEW_PASSWORD)).id == user.id
    with pytest.raises(AuthenticationError):
        await vdata_db.sessions.validate(phone.token)
    assert (await vdata_db.sessions.validate(laptop.token)).id == laptop.session.id
    with pytest.raises(AuthenticationError):
        await vdata_db.api_keys.verify(ci.token)
    assert (await vdata_db.api_keys.verify(deploy.token)).id == deploy.key.id

    events = await audit_events(owner, user.id)
    actions = [(e["actor"], e["action"], e["ip"]) for e in events]
    assert ("ada", "user.password_reset_issue", "192.0.2.7") in actions
    assert ("ada", "user.password_reset", "192.0.2.7") in actions
    reset_event = next(e for e in events if e["action"] == "user.password_reset")
    assert '"sessions_revoked": 1' in reset_event["after"]
    assert '"api_keys_revoked": 1' in reset_event["after"]
    assert [e["action"] for e in await audit_events(owner, phone.session.id)][-1] == (
        "session.revoke"
    )
    assert "api_key.revoke" in [e["action"] for e in await audit_events(owner, ci.key.id)]
    laptop_actions = [e["action"] for e in await audit_events(owner, laptop.session.id)]
    assert "session.revoke" not in laptop_actions


async def test_reset_revokes_every_session_by_default_and_keys_when_asked(
    vdata_db: Any,
) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    sessions = [await vdata_db.sessions.create(user.id, actor="ada") for _ in range(2)]
    key = await vdata_db.api_keys.issue(user.id, name="ci", actor="ada")
    issued = await vdata_db.users.issue_password_reset("ada")
    assert issued is not None
    await vdata_db.users.reset_password(issued.token, NEW_PASSWORD, revoke_api_keys=True)
    assert await vdata_db.sessions.list_active(user.id) == []
    assert [s.session.id for s in sessions]  # both were live before
    with pytest.raises(AuthenticationError):
        await vdata_db.api_keys.verify(key.token)


async def test_reset_token_is_single_use_replaced_by_a_new_one_and_expires(
    vdata_db: Any, owner: Any
) -> None:
    await vdata_db.users.create(new_user("ada"), actor="admin")
    first = await vdata_db.users.issue_password_reset("ada")
    second = await vdata_db.users.issue_password_reset("ada")
    assert first is not None and second is not None
    with pytest.raises(AuthenticationError, match=INVALID_RESET):
        await vdata_db.users.reset_password(first.token, NEW_PASSWORD)  # replaced
    await vdata_db.users.reset_password(second.token, NEW_PASSWORD)
    with pytest.raises(AuthenticationError, match=INVALID_RESET):
        await vdata_db.users.reset_password(second.token, "yet another passphrase")  # used
    assert await owner.fetchval("SELECT count(*) FROM app.password_reset_tokens") == 0

    third = await vdata_db.users.issue_password_reset("ada")
    assert third is not None
    await owner.execute(
        "UPDATE app.password_reset_tokens"
        " SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 second'"
    )
    with pytest.raises(AuthenticationError, match=INVALID_RESET):
        await vdata_db.users.password_reset_user(third.token)
    with pytest.raises(AuthenticationError, match=INVALID_RESET):
        await vdata_db.users.reset_password(third.token, "yet another passphrase")  # expired
    # The expired token was used up by the attempt; the password is unchanged.
    assert await owner.fetchval("SELECT count(*) FROM app.password_reset_tokens") == 0
    assert (await vdata_db.users.authenticate("ada", NEW_PASSWORD)).username == "ada"
    for junk in ("", "x" * 10_000, "nope"):
        with pytest.raises(AuthenticationError, match=INVALID_RESET):
            await vdata_db.users.reset_password(junk, "yet another passphrase")


async def test_refusals_write_nothing(vdata_db: Any, owner: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    before = await owner.fetchval("SELECT count(*) FROM app.audit_log")
    # Unknown, deleted or deactivated accounts get no token and nothing is written.
    for login in ("nobody", "nobody@example.org", "", "x" * 300, "ad\x00a", "ad\ud800a"):
        assert await vdata_db.users.issue_password_reset(login) is None
    other = await vdata_db.users.create(new_user("bob"), actor="admin")
    await vdata_db.users.deactivate(other.id, actor="admin")
    middle = await owner.fetchval("SELECT count(*) FROM app.audit_log")
    assert middle == before + 2  # bob's create and deactivate only
    assert await vdata_db.users.issue_password_reset("bob") is None
    assert await owner.fetchval("SELECT count(*) FROM app.password_reset_tokens") == 0

    issued = await vdata_db.users.issue_password_reset("ada")
    assert issued is not None
    # A password that breaks the policy: ValidationError, and the token survives.
    with pytest.raises(ValidationError):
        await vdata_db.users.reset_password(issued.token, "short")
    for bad in ("all", ["not-a-uuid"], 7):
        with pytest.raises(ValidationError):
            await vdata_db.users.reset_password(issued.token, NEW_PASSWORD, revoke_sessions=bad)
    with pytest.raises(ValidationError):
        await vdata_db.users.issue_password_reset("ada", ip="not an ip")
    assert (await vdata_db.users.password_reset_user(issued.token)).id == user.id
    # An account deactivated after the token was issued cannot be reset with it.
    await vdata_db.users.deactivate(user.id, actor="admin")
    with pytest.raises(AuthenticationError):
        await vdata_db.users.reset_password(issued.token, NEW_PASSWORD)


async def test_unknown_and_known_accounts_cost_the_same_statements(
    vdata_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The timing of a reset request does not tell an account from none: one
    # argon2 verification, one token and one statement either way; a reset hashes the new
    # password before the token is looked at, good token or bad.
    await vdata_db.users.create(new_user("ada"), actor="admin")
    executor = vdata_db.users.executor
    statements: list[str] = []
    original = type(executor).fetchrow

    async def counting(self: Any, q: Any, args: Any) -> Any:
        statements.append(q.name)
        return await original(self, q, args)

    monkeypatch.setattr(type(executor), "fetchrow", counting)
    hashes: list[str] = []
    original_hash = PasswordHasher.hash

    async def counting_hash(self: Any, password: str) -> str:
        hashes.append("hash")
        return await original_hash(self, password)

    monkeypatch.setattr(PasswordHasher, "hash", counting_hash)
    original_dummy = PasswordHasher.verify_dummy

    async def counting_dummy(self: Any, password: str) -> bool:
        hashes.append("dummy")
        return await original_dummy(self, password)

    monkeypatch.setattr(PasswordHasher, "verify_dummy", counting_dummy)

    assert await vdata_db.users.issue_password_reset("nobody") is None
    unknown = list(statements)
    statements.clear()
    issued = await vdata_db.users.issue_password_reset("ada")
    assert issued is not None
    assert statements == unknown == ["users.set_password_reset"]
    assert hashes == ["dummy", "dummy"]  # one argon2 verification each
    hashes.clear()

    with pytest.raises(AuthenticationError):
        await vdata_db.users.reset_password("vdr_not_a_token_at_all", NEW_PASSWORD)
    assert hashes == ["hash"]
    await vdata_db.users.reset_password(issued.token, NEW_PASSWORD)
    assert hashes == ["hash", "hash"]


async def test_unknown_account_costs_about_as_much_as_a_known_one(vdata_app_dsn: str) -> None:
    # As for a login (test_users_auth): real hashing work (argon2 at 8 MiB)
    # so that it, not the round trip, dominates, as it does with the
    # defaults. Unknown and known are interleaved in one run.
    settings = cheap_settings(argon2_time_cost=2, argon2_memory_cost_kib=8 * 1024)
    async with await connect(vdata_app_dsn, settings=settings) as db:
        await db.users.create(new_user("ada"), actor="admin")

        async def timed(login: str) -> float:
            started = time.perf_counter()
            await db.users.issue_password_reset(login)
            return time.perf_counter() - started

        await timed("nobody")  # warm up: the dummy hash is made on first use
        unknown, known = [], []
        for _ in range(15):
            unknown.append(await timed("nobody"))
            known.append(await timed("ada"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 <= ratio <= 2.0, f"unknown/known median ratio {ratio:.2f}"


async def test_admin_unlock_is_audited_and_idempotent(vdata_db: Any, owner: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    await _lock(vdata_db, "ada")
    with pytest.raises(AccountLockedError):
        await vdata_db.users.authenticate("ada", PASSWORD)
    unlocked = await vdata_db.users.unlock(user.id, actor="admin")
    assert unlocked.locked_until is None and unlocked.failed_login_count == 0
    assert unlocked.updated_by == "admin"
    assert (await vdata_db.users.authenticate("ada", PASSWORD)).id == user.id
    count = await owner.fetchval("SELECT count(*) FROM app.audit_log")
    again = await vdata_db.users.unlock(user.id, actor="admin")  # nothing to clear
    assert again.locked_until is None
    assert await owner.fetchval("SELECT count(*) FROM app.audit_log") == count
    events = [(e["actor"], e["action"]) for e in await audit_events(owner, user.id)]
    assert events.count(("admin", "user.unlock")) == 1
    with pytest.raises(NotFoundError):
        await vdata_db.users.unlock(uuid.uuid4(), actor="admin")
    with pytest.raises(ValidationError):
        await vdata_db.users.unlock(user.id)  # no actor
    await vdata_db.users.soft_delete(user.id, actor="admin")
    with pytest.raises(NotFoundError):
        await vdata_db.users.unlock(user.id, actor="admin")


async def test_no_reset_token_or_password_in_repr_errors_logs_or_audit(
    vdata_db: Any, owner: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await vdata_db.users.create(new_user("ada"), actor="admin")
    issued = await vdata_db.users.issue_password_reset("ada")
    assert issued is not None
    texts = [repr(issued), str(issued)]
    try:
        await vdata_db.users.reset_password(issued.token + "x", NEW_PASSWORD)
    except AuthenticationError as exc:
        texts += [repr(exc), str(exc)]
    await vdata_db.users.reset_password(issued.token, NEW_PASSWORD)
    texts += [log_text(caplog), await all_audit_text(owner)]
    hashes = [r[0] for r in await owner.fetch("SELECT password_hash FROM app.users")]
    assert_no_secret([issued.token, NEW_PASSWORD, PASSWORD, *hashes], *texts)
