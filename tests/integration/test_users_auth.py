"""UserRepository credentials on a real PostgreSQL: login, lockout, passwords, email tokens."""

from __future__ import annotations

import asyncio
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
    VdataError,
    connect,
)
from vdata.models.users import Credentials
from vdata.queries import load
from vdata.security.passwords import hasher_for

pytestmark = pytest.mark.integration

NEW_PASSWORD = "an0ther long passphrase"


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters; lockout after 3 failures."""
    return cheap_settings()


async def test_authenticate_by_username_or_email_records_the_login(
    vdata_db: Any, owner: Any
) -> None:
    user = await vdata_db.users.create(new_user("ada", email="Ada@Example.org"), actor="admin")
    by_name = await vdata_db.users.authenticate("ada", PASSWORD, ip="192.0.2.1")
    assert by_name.id == user.id
    assert by_name.last_login_at is not None and by_name.last_login_ip == "192.0.2.1"
    by_email = await vdata_db.users.authenticate("ada@example.ORG", PASSWORD, ip="2001:db8::1")
    assert by_email.id == user.id and by_email.last_login_ip == "2001:db8::1"
    events = await audit_events(owner, user.id)
    assert [(e["actor"], e["action"], e["ip"]) for e in events[1:]] == [
        ("ada", "user.login", "192.0.2.1"),
        ("ada", "user.login", "2001:db8::1"),
    ]
    with pytest.raises(ValidationError):
        await vdata_db.users.authenticate("ada", PASSWORD, ip="not an ip")


async def test_unknown_user_and_wrong_password_get_the_same_error(vdata_db: Any) -> None:
    await vdata_db.users.create(new_user("ada"), actor="admin")
    messages = set()
    for login, password in (
        ("nobody", PASSWORD),
        ("ada", "wrong password!"),
        ("x" * 300, PASSWORD),
        ("ad\x00a", PASSWORD),
        ("", PASSWORD),
        ("ad\ud800a", PASSWORD),
        ("' OR '1'='1", PASSWORD),
        ("ada' --", PASSWORD),
        ("ada", "' OR '1'='1"),
    ):
        with pytest.raises(AuthenticationError) as caught:
            await vdata_db.users.authenticate(login, password)
        assert not isinstance(caught.value, AccountLockedError)
        messages.add(str(caught.value))
    assert len(messages) == 1


async def test_inactive_or_deleted_users_cannot_log_in(vdata_db: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    await vdata_db.users.deactivate(user.id, actor="admin")
    with pytest.raises(AuthenticationError) as inactive:
        await vdata_db.users.authenticate("ada", PASSWORD)
    await vdata_db.users.activate(user.id, actor="admin")
    await vdata_db.users.soft_delete(user.id, actor="admin")
    with pytest.raises(AuthenticationError) as deleted:
        await vdata_db.users.authenticate("ada", PASSWORD)
    with pytest.raises(AuthenticationError) as unknown:
        await vdata_db.users.authenticate("nobody", PASSWORD)
    assert str(inactive.value) == str(deleted.value) == str(unknown.value)


async def test_lockout_after_threshold_and_its_expiry(vdata_db: Any, owner: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    for _ in range(2):
        with pytest.raises(AuthenticationError) as failed:
            await vdata_db.users.authenticate("ada", "wrong password!", ip="192.0.2.9")
        assert not isinstance(failed.value, AccountLockedError)
    assert (await vdata_db.users.get(user.id)).failed_login_count == 2
    with pytest.raises(AccountLockedError) as locked:
        await vdata_db.users.authenticate("ada", "wrong password!")
    assert locked.value.locked_until is not None
    # Locked: even the right password is refused until locked_until.
    with pytest.raises(AccountLockedError) as still:
        await vdata_db.users.authenticate("ada", PASSWORD)
    assert still.value.locked_until == locked.value.locked_until
    actions = [e["action"] for e in await audit_events(owner, user.id)]
    assert actions == ["user.create", "user.login_failed", "user.login_failed", "user.lock"]

    # Let the lock expire (as the owner, instead of sleeping 15 minutes).
    await owner.execute(
        "UPDATE app.users SET locked_until = now() - interval '1 second' WHERE id = $1", user.id
    )
    # After expiry, one failure starts a new count instead of locking again.
    with pytest.raises(AuthenticationError) as after:
        await vdata_db.users.authenticate("ada", "wrong password!")
    assert not isinstance(after.value, AccountLockedError)
    assert (await vdata_db.users.get(user.id)).failed_login_count == 1
    good = await vdata_db.users.authenticate("ada", PASSWORD)
    assert good.failed_login_count == 0 and good.locked_until is None


async def test_lock_from_concurrent_failures_is_counted_exactly(vdata_db: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    outcomes = await asyncio.gather(
        *(vdata_db.users.authenticate("ada", "wrong password!") for _ in range(8)),
        return_exceptions=True,
    )
    assert all(isinstance(o, AuthenticationError) for o in outcomes)
    assert any(isinstance(o, AccountLockedError) for o in outcomes)
    row = await vdata_db.users.get(user.id)
    assert row.locked_until is not None and row.failed_login_count >= 3


async def test_rehash_when_parameters_change(vdata_db: Any, vdata_app_dsn: str, owner: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    before = await owner.fetchval("SELECT password_hash FROM app.users WHERE id = $1", user.id)
    stronger = cheap_settings(argon2_time_cost=2)
    async with await connect(vdata_app_dsn, settings=stronger) as db2:
        await db2.users.authenticate("ada", PASSWORD)
    after = await owner.fetchval("SELECT password_hash FROM app.users WHERE id = $1", user.id)
    assert before != after and ",t=1," in before and ",t=2," in after
    assert not hasher_for(stronger).needs_rehash(after)
    async with await connect(vdata_app_dsn, settings=stronger) as db2:
        assert (await db2.users.authenticate("ada", PASSWORD)).id == user.id


async def test_change_password_checks_old_revokes_sessions_and_audits(
    vdata_db: Any, owner: Any
) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    session_ids = [
        await owner.fetchval(
            "INSERT INTO app.sessions (user_id, token_hash, expires_at, created_by, updated_by)"
            " VALUES ($1, $2, now() + interval '1 hour', 'test', 'test') RETURNING id",
            user.id,
            bytes([i]) * 32,
        )
        for i in range(2)
    ]
    with pytest.raises(AuthenticationError):
        await vdata_db.users.change_password(
            user.id, old_password="wrong password!", new_password=NEW_PASSWORD, actor="ada"
        )
    with pytest.raises(ValidationError):
        await vdata_db.users.change_password(
            user.id, old_password=PASSWORD, new_password="short", actor="ada"
        )
    with pytest.raises(NotFoundError):
        await vdata_db.users.change_password(
            uuid.uuid4(), old_password=PASSWORD, new_password=NEW_PASSWORD, actor="ada"
        )
    assert await owner.fetchval("SELECT count(*) FROM app.sessions WHERE revoked_at IS NULL") == 2
    changed = await vdata_db.users.change_password(
        user.id, old_password=PASSWORD, new_password=NEW_PASSWORD, actor="ada"
    )
    assert changed.password_changed_at > user.password_changed_at
    assert await owner.fetchval("SELECT count(*) FROM app.sessions WHERE revoked_at IS NULL") == 0
    with pytest.raises(AuthenticationError):
        await vdata_db.users.authenticate("ada", PASSWORD)
    assert (await vdata_db.users.authenticate("ada", NEW_PASSWORD)).id == user.id
    actions = [(e["actor"], e["action"]) for e in await audit_events(owner, user.id)]
    assert ("ada", "user.password_change") in actions
    for session_id in session_ids:
        revoked = await audit_events(owner, session_id)
        assert [(e["actor"], e["action"]) for e in revoked] == [("ada", "session.revoke")]


async def test_email_verification_is_single_use_and_expires(vdata_db: Any, owner: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    issued = await vdata_db.users.issue_email_verification(user.id, actor="admin")
    assert issued.expires_at > issued.user.updated_at
    stored = await owner.fetchrow(
        "SELECT email_verification_token_hash, email_verification_expires_at"
        " FROM app.users WHERE id = $1",
        user.id,
    )
    assert stored[0] is not None and issued.token.encode() not in bytes(stored[0])
    assert stored[1] == issued.expires_at
    verified = await vdata_db.users.verify_email(issued.token)
    assert verified.is_verified and verified.updated_by == "ada"
    with pytest.raises(AuthenticationError):
        await vdata_db.users.verify_email(issued.token)  # single use
    with pytest.raises(ValidationError):
        await vdata_db.users.issue_email_verification(user.id, actor="admin")
    with pytest.raises(NotFoundError):
        await vdata_db.users.issue_email_verification(uuid.uuid4(), actor="admin")

    other = await vdata_db.users.create(new_user("bob"), actor="admin")
    first = await vdata_db.users.issue_email_verification(other.id, actor="admin")
    second = await vdata_db.users.issue_email_verification(other.id, actor="admin")
    with pytest.raises(AuthenticationError):
        await vdata_db.users.verify_email(first.token)  # replaced by the second
    await owner.execute(
        "UPDATE app.users SET email_verification_expires_at = now() - interval '1 second'"
        " WHERE id = $1",
        other.id,
    )
    with pytest.raises(AuthenticationError):
        await vdata_db.users.verify_email(second.token)  # expired
    for junk in ("", "x" * 10_000, "nope"):
        with pytest.raises(AuthenticationError):
            await vdata_db.users.verify_email(junk)


async def test_no_secret_in_repr_str_errors_logs_or_audit(
    vdata_db: Any, owner: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    users = vdata_db.users
    new = new_user("ada")
    user = await users.create(new, actor="admin")
    issued = await users.issue_email_verification(user.id, actor="admin")
    texts = [repr(new), str(new), repr(user), str(user), repr(issued), str(issued)]
    errors: list[BaseException] = []
    for call in (
        users.authenticate("ada", "wrong password!"),
        users.authenticate("nobody", PASSWORD),
        users.create(new, actor="admin"),
        users.change_password(
            user.id, old_password="wrong password!", new_password=NEW_PASSWORD, actor="ada"
        ),
        users.change_password(user.id, old_password=PASSWORD, new_password="short", actor="ada"),
        users.verify_email(issued.token + "x"),
    ):
        try:
            await call
        except VdataError as exc:
            errors.append(exc)
    assert len(errors) == 6
    texts += [repr(e) for e in errors] + [str(e) for e in errors]
    credentials = await users.one(
        load().bind("users.get_user_credentials_by_id", Credentials), id=user.id
    )
    assert credentials.password_hash.startswith("$argon2")
    texts += [repr(credentials), str(credentials)]
    texts += [repr(new.__rich_repr__()), repr(credentials.__rich_repr__())]
    password_hash = await owner.fetchval(
        "SELECT password_hash FROM app.users WHERE id = $1", user.id
    )
    texts += [log_text(caplog), await all_audit_text(owner)]
    secrets = [PASSWORD, "wrong password!", NEW_PASSWORD, "short", issued.token, password_hash]
    assert_no_secret(secrets, *texts)


async def test_unknown_user_costs_about_as_much_as_a_wrong_password(
    vdata_app_dsn: str,
) -> None:
    # Real hashing work (argon2 at 8 MiB) so that the hash, not the round
    # trips, dominates, as it does with the defaults; the lockout is set out
    # of reach so that every attempt is a plain failure.
    settings = cheap_settings(
        argon2_time_cost=2, argon2_memory_cost_kib=8 * 1024, lockout_threshold=10_000
    )
    async with await connect(vdata_app_dsn, settings=settings) as db:
        await db.users.create(new_user("ada"), actor="admin")

        async def timed(login: str) -> float:
            started = time.perf_counter()
            with pytest.raises(AuthenticationError):
                await db.users.authenticate(login, "wrong password!")
            return time.perf_counter() - started

        await timed("nobody")  # warm up: the dummy hash is made on first use
        unknown, wrong = [], []
        for _ in range(15):
            unknown.append(await timed("nobody"))
            wrong.append(await timed("ada"))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 <= ratio <= 2.0, f"unknown/wrong median ratio {ratio:.2f}"
