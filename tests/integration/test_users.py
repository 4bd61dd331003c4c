"""UserRepository on a real PostgreSQL: CRUD, versions, listings, audit trail, bad input."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.integration._users import (
    all_audit_text,
    audit_events,
    cheap_settings,
    count_rows,
    new_user,
)
from vdata import (
    ConflictError,
    NotFoundError,
    StaleVersionError,
    ValidationError,
)
from vdata.models.users import User, UserPatch

pytestmark = pytest.mark.integration

INJECTIONS = [
    "'; DROP TABLE app.users; --",
    "Robert'); DELETE FROM app.users WHERE ('1'='1",
    '" OR 1=1 --',
    "$1 $$ :name %s {0} \\x00",
    "<script>alert('x')</script>",
]


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters for every test of this module."""
    return cheap_settings()


async def test_create_get_by_id_username_and_email(vdata_db: Any, owner: Any) -> None:
    user = await vdata_db.users.create(new_user("ada", email="Ada@Example.org"), actor="admin")
    assert isinstance(user, User)
    assert (user.username, user.email, user.full_name) == ("ada", "Ada@Example.org", "Ada")
    assert user.version == 1 and user.is_active and not user.is_verified
    assert user.created_by == user.updated_by == "admin"
    assert await vdata_db.users.get(user.id) == user
    assert await vdata_db.users.get_by_username("ada") == user
    assert await vdata_db.users.get_by_email("ADA@example.ORG") == user
    with pytest.raises(NotFoundError):
        await vdata_db.users.get_by_username("ADA")  # usernames are case-sensitive
    with pytest.raises(NotFoundError):
        await vdata_db.users.get(uuid.uuid4())
    stored = await owner.fetchval("SELECT password_hash FROM app.users WHERE id = $1", user.id)
    assert stored.startswith("$argon2id$")
    events = await audit_events(owner, user.id)
    assert [(e["actor"], e["action"]) for e in events] == [("admin", "user.create")]
    assert "password" not in events[0]["after"] or "password_hash" not in events[0]["after"]


async def test_write_without_actor_is_refused_and_writes_nothing(vdata_db: Any, owner: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        await vdata_db.users.create(new_user("nobody"))
    assert caught.value.field == "actor"
    assert await count_rows(owner, "users") == 0
    async with vdata_db.transaction(actor="tx-admin") as tx:
        user = await tx.users.create(new_user("viatx"))
    assert user.created_by == "tx-admin"


async def test_duplicate_username_and_case_variant_email_conflict(
    vdata_db: Any, owner: Any
) -> None:
    await vdata_db.users.create(new_user("ada", email="ada@example.org"), actor="admin")
    with pytest.raises(ConflictError) as dup_name:
        await vdata_db.users.create(new_user("ada", email="other@example.org"), actor="admin")
    assert dup_name.value.constraint == "unique_users_username"
    with pytest.raises(ConflictError) as dup_email:
        await vdata_db.users.create(new_user("ada2", email="ADA@EXAMPLE.org"), actor="admin")
    assert dup_email.value.constraint == "unique_users_email_lower"
    assert await count_rows(owner, "users") == 1
    assert await count_rows(owner, "audit_log") == 1  # the failed inserts audited nothing


@pytest.mark.parametrize(
    "fields",
    [
        {"username": "ad\x00a"},
        {"email": "ada\x00@example.org"},
        {"full_name": "Ada\x00Lovelace"},
        {"password": "correct horse\x00battery"},
        {"username": "a" * 33},
        {"email": "a" * 250 + "@example.org"},
        {"full_name": "x" * 201},
        {"password": "p" * 1025},
        {"password": "short"},
        {"username": "ab"},
        {"username": "-leading"},
        {"email": "not-an-email"},
    ],
)
async def test_bad_input_raises_validation_error_and_writes_nothing(
    vdata_db: Any, owner: Any, fields: dict[str, str]
) -> None:
    with pytest.raises(ValidationError):
        await vdata_db.users.create(new_user("ada", **fields), actor="admin")
    assert await count_rows(owner, "users") == 0
    assert await count_rows(owner, "audit_log") == 0


async def test_bad_patch_raises_validation_error_and_changes_nothing(
    vdata_db: Any, owner: Any
) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    for patch in (
        UserPatch(full_name="a\x00b"),
        UserPatch(full_name="x" * 201),
        UserPatch(email="nope"),
        UserPatch(),
    ):
        with pytest.raises(ValidationError):
            await vdata_db.users.update(user.id, patch, expected_version=1, actor="admin")
    assert await vdata_db.users.get(user.id) == user
    assert await count_rows(owner, "audit_log") == 1


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_injection_payloads_are_stored_verbatim(vdata_db: Any, payload: str) -> None:
    text = payload  # "\\x00" here is four printable characters, not a NUL
    user = await vdata_db.users.create(new_user("ada", full_name=text), actor=text)
    assert user.full_name == text and user.created_by == text
    again = await vdata_db.users.get(user.id)
    assert again.full_name == text
    patched = await vdata_db.users.update(
        user.id, UserPatch(full_name=text + "!"), expected_version=1, actor=text
    )
    assert patched.full_name == text + "!" and patched.updated_by == text
    # Look-ups and searches take the payload as data too.
    with pytest.raises(NotFoundError):
        await vdata_db.users.get_by_username(text)
    with pytest.raises(NotFoundError):
        await vdata_db.users.get_by_email(text)
    assert await vdata_db.users.list(search=text) == []
    assert (await vdata_db.users.get_by_username("ada")).full_name == text + "!"


async def test_injection_shaped_email_is_stored_verbatim(vdata_db: Any, owner: Any) -> None:
    email = "a'OR'1'='1--;@example.org"  # a valid address shape, full of SQL
    user = await vdata_db.users.create(new_user("ada", email=email), actor="admin")
    assert user.email == email
    assert (await vdata_db.users.get_by_email(email.upper())).id == user.id
    assert [u.id for u in await vdata_db.users.list(search="a'OR")] == [user.id]
    assert (await vdata_db.users.authenticate(email, "correct horse battery staple")).id == user.id
    assert await count_rows(owner, "users") == 1


async def test_changes_in_a_transaction_commit_or_roll_back_together(vdata_db: Any) -> None:
    with pytest.raises(ConflictError):
        async with vdata_db.transaction(actor="admin") as tx:
            await tx.users.create(new_user("ada"))
            await tx.users.create(new_user("ada", email="other@example.org"))
    assert await vdata_db.users.list() == []
    async with vdata_db.transaction(actor="admin") as tx:
        user = await tx.users.create(new_user("ada"))
        await tx.users.deactivate(user.id)
    assert not (await vdata_db.users.get(user.id)).is_active


async def test_tx_fixture_sees_its_own_writes(vdata_tx: Any) -> None:
    user = await vdata_tx.users.create(new_user("txuser"))
    assert user.created_by == "test"
    assert (await vdata_tx.users.get_by_username("txuser")).id == user.id


async def test_update_is_versioned(vdata_db: Any, owner: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    updated = await vdata_db.users.update(
        user.id, UserPatch(full_name="Ada Lovelace"), expected_version=1, actor="ada"
    )
    assert (updated.full_name, updated.version, updated.updated_by) == ("Ada Lovelace", 2, "ada")
    assert updated.created_by == "admin"
    with pytest.raises(StaleVersionError) as stale:
        await vdata_db.users.update(
            user.id, UserPatch(full_name="Lost"), expected_version=1, actor="bob"
        )
    assert stale.value.expected_version == 1
    with pytest.raises(NotFoundError):
        await vdata_db.users.update(
            uuid.uuid4(), UserPatch(full_name="x"), expected_version=1, actor="bob"
        )
    events = await audit_events(owner, user.id)
    assert [(e["actor"], e["action"]) for e in events] == [
        ("admin", "user.create"),
        ("ada", "user.update"),
    ]
    assert '"full_name": "Ada"' in events[1]["before"]
    assert '"full_name": "Ada Lovelace"' in events[1]["after"]


async def test_update_email_clears_verification_only_on_a_real_change(vdata_db: Any) -> None:
    user = await vdata_db.users.create(new_user("ada"), actor="admin")
    issued = await vdata_db.users.issue_email_verification(user.id, actor="admin")
    verified = await vdata_db.users.verify_email(issued.token)
    assert verified.is_verified
    same = await vdata_db.users.update(
        user.id, UserPatch(email="ADA@example.org"), expected_version=verified.version, actor="ada"
    )
    assert same.is_verified and same.email == "ADA@example.org"
    moved = await vdata_db.users.update(
        user.id, UserPatch(email="ada@elsewhere.org"), expected_version=same.version, actor="ada"
    )
    assert not moved.is_verified


async def test_64_concurrent_updates_one_winner_per_version(vdata_db: Any) -> None:
    user = await vdata_db.users.create(new_user("ada", full_name="0"), actor="admin")
    outcomes = await asyncio.gather(
        *(
            vdata_db.users.update(
                user.id, UserPatch(full_name=f"w{i}"), expected_version=1, actor=f"w{i}"
            )
            for i in range(64)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, User)]
    assert len(winners) == 1
    assert all(isinstance(o, StaleVersionError) for o in outcomes if not isinstance(o, User))
    assert winners[0].version == 2

    async def increment(worker: int) -> int:
        tries = 0
        while True:
            tries += 1
            current = await vdata_db.users.get(user.id)
            value = int(current.full_name) if current.full_name.isdigit() else 0
            try:
                await vdata_db.users.update(
                    user.id,
                    UserPatch(full_name=str(value + 1)),
                    expected_version=current.version,
                    actor=f"inc{worker}",
                )
                return tries
            except StaleVersionError:
                continue

    await asyncio.gather(*(increment(i) for i in range(64)))
    final = await vdata_db.users.get(user.id)
    assert final.full_name == "64"  # no increment was lost
    assert final.version == 2 + 64


async def test_activate_deactivate_soft_delete_restore_purge(vdata_db: Any, owner: Any) -> None:
    users = vdata_db.users
    user = await users.create(new_user("ada"), actor="admin")
    assert not (await users.deactivate(user.id, actor="admin")).is_active
    assert (await users.activate(user.id, actor="admin")).is_active
    deleted = await users.soft_delete(user.id, actor="admin")
    assert deleted.deleted_at is not None and deleted.deleted_by == "admin"
    with pytest.raises(NotFoundError):
        await users.get(user.id)
    with pytest.raises(NotFoundError):
        await users.soft_delete(user.id, actor="admin")
    with pytest.raises(NotFoundError):
        await users.deactivate(user.id, actor="admin")
    assert [u.id for u in await users.list(include_deleted=True)] == [user.id]
    assert await users.list() == []
    with pytest.raises(ConflictError):  # the username stays taken after a soft delete
        await users.create(new_user("ada", email="new@example.org"), actor="admin")
    restored = await users.restore(user.id, actor="admin")
    assert restored.deleted_at is None and restored.deleted_by is None
    with pytest.raises(NotFoundError):
        await users.restore(user.id, actor="admin")
    with pytest.raises(NotFoundError):  # only soft-deleted users are purged
        await users.purge(user.id, actor="admin")
    await users.soft_delete(user.id, actor="admin")
    purged = await users.purge(user.id, actor="root")
    assert purged.id == user.id
    assert await count_rows(owner, "users") == 0
    actions = [(e["actor"], e["action"]) for e in await audit_events(owner, user.id)]
    assert actions == [
        ("admin", "user.create"),
        ("admin", "user.deactivate"),
        ("admin", "user.activate"),
        ("admin", "user.soft_delete"),
        ("admin", "user.restore"),
        ("admin", "user.soft_delete"),
        ("root", "user.purge"),
    ]


async def test_every_change_left_its_audit_event_without_secrets(vdata_db: Any, owner: Any) -> None:
    users = vdata_db.users
    user = await users.create(new_user("ada"), actor="admin")
    await users.update(user.id, UserPatch(full_name="A"), expected_version=1, actor="ada")
    issued = await users.issue_email_verification(user.id, actor="admin")
    await users.verify_email(issued.token)
    await users.change_password(
        user.id,
        old_password="correct horse battery staple",
        new_password="n3w passphrase!",
        actor="ada",
    )
    await users.authenticate("ada", "n3w passphrase!", ip="192.0.2.7")
    actions = [(e["actor"], e["action"]) for e in await audit_events(owner, user.id)]
    assert actions == [
        ("admin", "user.create"),
        ("ada", "user.update"),
        ("admin", "user.email_verification_issue"),
        ("ada", "user.email_verify"),
        ("ada", "user.password_change"),
        ("ada", "user.login"),
    ]
    text = await all_audit_text(owner)
    hashes = await owner.fetchrow(
        "SELECT password_hash, email_verification_token_hash FROM app.users WHERE id = $1",
        user.id,
    )
    assert hashes["password_hash"] not in text
    assert "password_hash" not in text and "token_hash" not in text
    assert issued.token not in text and "n3w passphrase!" not in text
