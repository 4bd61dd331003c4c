"""Soft delete and restore of every soft-deletable entity, one row and many, on PostgreSQL.

Each operation: its audit event (before and after, versions), the optimistic
lock (StaleVersionError), not found, no access, bad input (ValidationError)
and, for every refusal, nothing written: the row and the audit log as before.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tests.integration._users import cheap_settings, new_user
from tests.integration._work import events, make_users
from vdata.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    StaleVersionError,
    ValidationError,
)
from vdata.models.projects import NewProject
from vdata.models.tasks import NewTask

pytestmark = pytest.mark.integration

TABLES = ("users", "projects", "tasks", "roles", "permissions", "api_keys", "sessions")


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: these tests create users, they do not measure hashing."""
    return cheap_settings()


async def snapshot(owner: asyncpg.Connection) -> tuple[Any, ...]:
    """Every row of the soft-deletable tables and the audit log size: 'nothing written'."""
    state: list[Any] = [await owner.fetchval("SELECT count(*) FROM app.audit_log")]
    for table in TABLES:  # fixed names, not input
        rows = await owner.fetch(
            f"SELECT id, version, deleted_at, deleted_by FROM app.{table} ORDER BY id"
        )
        state.append([tuple(r) for r in rows])
    return tuple(state)


async def refused(
    owner: asyncpg.Connection, error: type[Exception], call: Callable[[], Awaitable[object]]
) -> Exception:
    """Assert *call* raises *error* and changes nothing; return the error."""
    before = await snapshot(owner)
    with pytest.raises(error) as caught:
        await call()
    assert await snapshot(owner) == before
    return caught.value


def versions(event: Any) -> tuple[int, int]:
    return json.loads(event.before)["version"], json.loads(event.after)["version"]


# -- users ---------------------------------------------------------------------


async def test_user_soft_delete_and_restore(vdata_db: Any, owner: asyncpg.Connection) -> None:
    db = vdata_db
    ada = await db.users.create(new_user("ada"), actor="admin")
    await refused(
        owner,
        StaleVersionError,
        lambda: db.users.soft_delete(ada.id, expected_version=ada.version + 1, actor="admin"),
    )
    await refused(
        owner,
        ValidationError,
        lambda: db.users.soft_delete(ada.id, expected_version="1", actor="admin"),
    )
    deleted = await db.users.soft_delete(ada.id, expected_version=ada.version, actor="admin")
    assert deleted.deleted_by == "admin" and deleted.version == ada.version + 1
    with pytest.raises(NotFoundError):
        await db.users.get(ada.id)
    await refused(owner, NotFoundError, lambda: db.users.soft_delete(ada.id, actor="admin"))
    await refused(
        owner,
        StaleVersionError,
        lambda: db.users.restore(ada.id, expected_version=ada.version, actor="admin"),
    )
    await refused(owner, NotFoundError, lambda: db.users.restore(uuid.uuid4(), actor="admin"))
    restored = await db.users.restore(ada.id, expected_version=deleted.version, actor="root")
    assert restored.deleted_at is None and restored.version == deleted.version + 1
    assert await db.users.get(ada.id) == restored
    await refused(owner, NotFoundError, lambda: db.users.restore(ada.id, actor="admin"))
    audit = (await events(db, "user", ada.id))[1:]
    assert [(e.actor, e.action) for e in audit] == [
        ("admin", "user.soft_delete"),
        ("root", "user.restore"),
    ]
    assert [versions(e) for e in audit] == [(1, 2), (2, 3)]


async def test_users_many_all_or_nothing(vdata_db: Any, owner: asyncpg.Connection) -> None:
    db = vdata_db
    ids = list((await make_users(db, "ada", "bob", "cyd")).values())
    missing = uuid.uuid4()
    error = await refused(
        owner, NotFoundError, lambda: db.users.soft_delete_many([*ids, missing], actor="admin")
    )
    assert str(missing) in str(error)
    await refused(
        owner, ValidationError, lambda: db.users.soft_delete_many([*ids, "x"], actor="admin")
    )
    deleted = await db.users.soft_delete_many([ids[2], ids[0], ids[1], ids[0]], actor="admin")
    assert [u.id for u in deleted] == sorted(ids) and all(u.deleted_at for u in deleted)
    # one already live again: restoring all three refuses, and restores none
    await db.users.restore(ids[1], actor="admin")
    await refused(owner, NotFoundError, lambda: db.users.restore_many(ids, actor="admin"))
    restored = await db.users.restore_many([ids[0], ids[2]], actor="admin")
    assert {u.id for u in restored} == {ids[0], ids[2]}
    for user_id in ids:
        actions = [e.action for e in await events(db, "user", user_id)]
        assert actions == ["user.create", "user.soft_delete", "user.restore"]
    assert await db.users.soft_delete_many([], actor="admin") == []


async def test_revoke_credentials_in_one_statement(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    db = vdata_db
    ids = await make_users(db, "ada", "bob")
    keys = [await db.api_keys.issue(ids["ada"], name=f"k{i}", actor="ada") for i in range(3)]
    await db.api_keys.revoke(keys[0].key.id, actor="ada")  # already revoked: not counted
    sessions = [await db.sessions.create(ids["ada"], actor="ada") for _ in range(2)]
    other = await db.api_keys.issue(ids["bob"], name="bob's", actor="bob")
    await refused(
        owner, NotFoundError, lambda: db.users.revoke_credentials(uuid.uuid4(), actor="admin")
    )
    await refused(owner, ValidationError, lambda: db.users.revoke_credentials(ids["ada"], actor=""))
    counts = await db.users.revoke_credentials(ids["ada"], actor="admin")
    assert (counts.user_id, counts.api_keys, counts.sessions) == (ids["ada"], 2, 2)
    for issued in keys:
        with pytest.raises(AuthenticationError):
            await db.api_keys.verify(issued.token)
    for session in sessions:
        with pytest.raises(AuthenticationError):
            await db.sessions.validate(session.token)
    assert (await db.api_keys.verify(other.token)).id == other.key.id
    for issued in keys[1:]:
        # revoked by admin, then the verify above was refused (and audited)
        assert [e.action for e in await events(db, "api_key", issued.key.id)][-2:] == [
            "api_key.revoke",
            "api_key.refuse",
        ]
    for session in sessions:
        [event] = [e for e in await events(db, "session", session.session.id) if e.actor == "admin"]
        assert event.action == "session.revoke"
    again = await db.users.revoke_credentials(ids["ada"], actor="admin")
    assert (again.api_keys, again.sessions) == (0, 0)


# -- projects --------------------------------------------------------------------


async def test_project_restore_and_unarchive_are_two_things(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar")
    olga, oscar = ids["olga"], ids["oscar"]
    project = await db.projects.create(
        NewProject(name="Apollo", is_public=True), owner_id=olga, actor="olga"
    )
    task = await db.tasks.create(project.id, NewTask(title="t"), as_user=olga, actor="olga")
    archived = await db.projects.archive(project.id, as_user=olga, actor="olga")
    await refused(
        owner,
        PermissionDeniedError,
        lambda: db.projects.soft_delete(project.id, as_user=oscar, actor="oscar"),
    )
    await refused(
        owner,
        StaleVersionError,
        lambda: db.projects.soft_delete(
            project.id, as_user=olga, expected_version=project.version, actor="olga"
        ),
    )
    deleted = await db.projects.soft_delete(
        project.id, as_user=olga, expected_version=archived.version, actor="olga"
    )
    with pytest.raises(NotFoundError):
        await db.tasks.get(task.id, as_user=olga)
    # undoing the delete is restore; unarchive refuses a deleted project
    await refused(
        owner, NotFoundError, lambda: db.projects.unarchive(project.id, as_user=olga, actor="olga")
    )
    await refused(  # someone else's deleted project does not exist for them
        owner, NotFoundError, lambda: db.projects.restore(project.id, as_user=oscar, actor="o")
    )
    await refused(
        owner,
        StaleVersionError,
        lambda: db.projects.restore(
            project.id, as_user=olga, expected_version=archived.version, actor="olga"
        ),
    )
    restored = await db.projects.restore(
        project.id, as_user=olga, expected_version=deleted.version, actor="olga"
    )
    assert restored.deleted_at is None and restored.archived_at is not None  # still archived
    assert (await db.tasks.get(task.id, as_user=olga)).id == task.id  # its tasks are back
    await refused(
        owner, NotFoundError, lambda: db.projects.restore(project.id, as_user=olga, actor="olga")
    )
    unarchived = await db.projects.unarchive(project.id, as_user=olga, actor="olga")
    assert unarchived.archived_at is None
    actions = [(e.action, versions(e)) for e in (await events(db, "project", project.id))[1:]]
    assert actions == [
        ("project.archive", (1, 2)),
        ("project.soft_delete", (2, 3)),
        ("project.restore", (3, 4)),
        ("project.unarchive", (4, 5)),
    ]


async def test_project_restore_conflicts_when_its_name_was_taken(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    db = vdata_db
    olga = (await make_users(db, "olga"))["olga"]
    first = await db.projects.create(NewProject(name="Apollo"), owner_id=olga, actor="olga")
    await db.projects.soft_delete(first.id, as_user=olga, actor="olga")
    second = await db.projects.create(NewProject(name="Apollo"), owner_id=olga, actor="olga")
    error = await refused(
        owner, ConflictError, lambda: db.projects.restore(first.id, as_user=olga, actor="olga")
    )
    assert error.constraint == "unique_projects_owner_id_and_name"  # type: ignore[attr-defined]
    await db.projects.soft_delete(second.id, as_user=olga, actor="olga")
    await refused(
        owner,
        ConflictError,
        lambda: db.projects.restore_many([first.id, second.id], as_user=olga, actor="olga"),
    )
    assert (await db.projects.restore(first.id, as_user=olga, actor="olga")).name == "Apollo"


async def test_projects_many_all_or_nothing(vdata_db: Any, owner: asyncpg.Connection) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar")
    olga, oscar = ids["olga"], ids["oscar"]
    mine = [
        (await db.projects.create(NewProject(name=f"p{i}"), owner_id=olga, actor="olga")).id
        for i in range(3)
    ]
    theirs = await db.projects.create(
        NewProject(name="theirs", is_public=True), owner_id=oscar, actor="oscar"
    )
    await refused(
        owner,
        PermissionDeniedError,
        lambda: db.projects.soft_delete_many([*mine, theirs.id], as_user=olga, actor="olga"),
    )
    await refused(
        owner,
        NotFoundError,
        lambda: db.projects.soft_delete_many([*mine, uuid.uuid4()], as_user=olga, actor="olga"),
    )
    deleted = await db.projects.soft_delete_many(mine, as_user=olga, actor="olga")
    assert [p.id for p in deleted] == sorted(mine)
    await refused(
        owner,
        NotFoundError,
        lambda: db.projects.restore_many(mine, as_user=oscar, actor="oscar"),
    )
    restored = await db.projects.restore_many(mine, as_user=olga, actor="olga")
    assert all(p.deleted_at is None for p in restored)
    for project_id in mine:
        actions = [e.action for e in await events(db, "project", project_id)]
        assert actions == ["project.create", "project.soft_delete", "project.restore"]


# -- tasks -----------------------------------------------------------------------


async def tasks_of(db: Any, owner_id: uuid.UUID, count: int, **project: Any) -> list[Any]:
    created = await db.projects.create(
        NewProject(name=f"board-{uuid.uuid4().hex[:8]}", **project),
        owner_id=owner_id,
        actor="owner",
    )
    return list(
        await db.tasks.create_many(
            created.id,
            [NewTask(title=f"t{i}") for i in range(count)],
            as_user=owner_id,
            actor="owner",
        )
    )


async def test_task_soft_delete_and_restore(vdata_db: Any, owner: asyncpg.Connection) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar")
    olga, oscar = ids["olga"], ids["oscar"]
    [task] = await tasks_of(db, olga, 1, is_public=True)
    await refused(
        owner,
        PermissionDeniedError,
        lambda: db.tasks.soft_delete(task.id, as_user=oscar, actor="oscar"),
    )
    await refused(
        owner,
        StaleVersionError,
        lambda: db.tasks.soft_delete(task.id, as_user=olga, expected_version=7, actor="olga"),
    )
    deleted = await db.tasks.soft_delete(task.id, as_user=olga, expected_version=1, actor="olga")
    with pytest.raises(NotFoundError):
        await db.tasks.get(task.id, as_user=olga)
    await refused(
        owner, NotFoundError, lambda: db.tasks.restore(task.id, as_user=oscar, actor="oscar")
    )
    await refused(
        owner,
        StaleVersionError,
        lambda: db.tasks.restore(task.id, as_user=olga, expected_version=1, actor="olga"),
    )
    await db.projects.archive(task.project_id, as_user=olga, actor="olga")
    await refused(
        owner, PermissionDeniedError, lambda: db.tasks.restore(task.id, as_user=olga, actor="o")
    )
    await db.projects.unarchive(task.project_id, as_user=olga, actor="olga")
    restored = await db.tasks.restore(
        task.id, as_user=olga, expected_version=deleted.version, actor="olga"
    )
    assert restored.deleted_at is None and await db.tasks.get(task.id, as_user=olga) == restored
    await refused(owner, NotFoundError, lambda: db.tasks.restore(task.id, as_user=olga, actor="o"))
    audit = (await events(db, "task", task.id))[1:]
    assert [(e.action, versions(e)) for e in audit] == [
        ("task.soft_delete", (1, 2)),
        ("task.restore", (2, 3)),
    ]


async def test_tasks_many_all_or_nothing(vdata_db: Any, owner: asyncpg.Connection) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar", "ivan")
    olga, oscar = ids["olga"], ids["oscar"]
    mine = [t.id for t in await tasks_of(db, olga, 5)]
    [theirs] = [t.id for t in await tasks_of(db, oscar, 1, is_public=True)]
    await refused(
        owner,
        PermissionDeniedError,
        lambda: db.tasks.soft_delete_many([*mine, theirs], as_user=olga, actor="olga"),
    )
    await refused(
        owner,
        ValidationError,
        lambda: db.tasks.soft_delete_many(str(mine[0]), as_user=olga, actor="olga"),
    )
    deleted = await db.tasks.soft_delete_many(mine[:3], as_user=olga, actor="olga")
    assert [t.id for t in deleted] == sorted(mine[:3])
    await refused(
        owner,
        NotFoundError,  # mine[3] is live: nothing to restore there
        lambda: db.tasks.restore_many(mine[:4], as_user=olga, actor="olga"),
    )
    restored = await db.tasks.restore_many(mine[:3], as_user=olga, actor="olga")
    assert sorted(t.id for t in restored) == sorted(mine[:3])
    for task_id in mine[:3]:
        assert [e.action for e in await events(db, "task", task_id)] == [
            "task.create",
            "task.soft_delete",
            "task.restore",
        ]


async def test_assign_many_all_or_nothing(vdata_db: Any, owner: asyncpg.Connection) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar", "ivan", "gone")
    olga = ids["olga"]
    mine = [t.id for t in await tasks_of(db, olga, 4)]
    [theirs] = [t.id for t in await tasks_of(db, ids["oscar"], 1, is_public=True)]
    await db.users.deactivate(ids["gone"], actor="admin")
    await refused(
        owner,
        ValidationError,
        lambda: db.tasks.assign_many(mine, ids["gone"], as_user=olga, actor="olga"),
    )
    await refused(
        owner,
        PermissionDeniedError,
        lambda: db.tasks.assign_many([*mine, theirs], ids["ivan"], as_user=olga, actor="olga"),
    )
    await refused(
        owner,
        NotFoundError,
        lambda: db.tasks.assign_many([*mine, uuid.uuid4()], ids["ivan"], as_user=olga, actor="o"),
    )
    changed = await db.tasks.assign_many(mine, ids["ivan"], as_user=olga, actor="olga")
    assert {t.assignee_id for t in changed} == {ids["ivan"]} and len(changed) == 4
    cleared = await db.tasks.assign_many(mine[:2], None, as_user=olga, actor="olga")
    assert {t.assignee_id for t in cleared} == {None}
    for task_id in mine:
        actions = [e.action for e in await events(db, "task", task_id)]
        assert actions.count("task.assign") == (2 if task_id in mine[:2] else 1)


# -- roles and permissions ---------------------------------------------------------


async def test_role_and_permission_soft_delete_and_restore(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    db = vdata_db
    ada = (await make_users(db, "ada"))["ada"]
    editor = await db.roles.create("editor", actor="admin")
    write = await db.roles.create_permission("projects:write", actor="admin")
    await db.roles.grant(editor.id, write.id, actor="admin")
    await db.roles.assign(ada, editor.id, actor="admin")
    assert await db.roles.permissions_of(ada) == {"projects:write"}

    await refused(
        owner,
        StaleVersionError,
        lambda: db.roles.soft_delete(editor.id, expected_version=2, actor="admin"),
    )
    gone = await db.roles.soft_delete(editor.id, expected_version=1, actor="admin")
    assert gone.deleted_by == "admin"
    assert await db.roles.permissions_of(ada) == frozenset()  # grants nothing meanwhile
    await refused(owner, ConflictError, lambda: db.roles.create("editor", actor="admin"))
    await refused(owner, NotFoundError, lambda: db.roles.soft_delete(editor.id, actor="admin"))
    await refused(
        owner,
        StaleVersionError,
        lambda: db.roles.restore(editor.id, expected_version=1, actor="admin"),
    )
    back = await db.roles.restore(editor.id, expected_version=gone.version, actor="admin")
    assert back.deleted_at is None
    assert await db.roles.permissions_of(ada) == {"projects:write"}  # grants kept

    await db.roles.soft_delete_permission(write.id, actor="admin")
    assert await db.roles.permissions_of(ada) == frozenset()
    await refused(
        owner, NotFoundError, lambda: db.roles.restore_permission(uuid.uuid4(), actor="admin")
    )
    await db.roles.restore_permission(write.id, expected_version=2, actor="admin")
    assert await db.roles.has_permission(ada, "projects:write")
    assert [e.action for e in (await events(db, "role", editor.id))] == [
        "role.create",
        "role.grant",
        "role.soft_delete",
        "role.restore",
    ]
    assert [e.action for e in (await events(db, "permission", write.id))] == [
        "permission.create",
        "permission.soft_delete",
        "permission.restore",
    ]


# -- API keys ----------------------------------------------------------------------


async def test_api_key_soft_delete_revokes_and_restore_keeps_it_revoked(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    db = vdata_db
    ids = await make_users(db, "ada", "bob")
    issued = await db.api_keys.issue(ids["ada"], name="ci", actor="ada")
    key = issued.key
    await refused(
        owner,
        NotFoundError,  # bob's key id scope: not his key
        lambda: db.api_keys.soft_delete(key.id, user_id=ids["bob"], actor="bob"),
    )
    await refused(
        owner,
        StaleVersionError,
        lambda: db.api_keys.soft_delete(key.id, expected_version=5, actor="ada"),
    )
    deleted = await db.api_keys.soft_delete(
        key.id, user_id=ids["ada"], expected_version=key.version, actor="ada"
    )
    assert deleted.revoked_at is not None
    with pytest.raises(AuthenticationError):
        await db.api_keys.verify(issued.token)
    with pytest.raises(NotFoundError):
        await db.api_keys.get(key.id)
    await refused(owner, NotFoundError, lambda: db.api_keys.soft_delete(key.id, actor="ada"))
    restored = await db.api_keys.restore(key.id, expected_version=deleted.version, actor="ada")
    assert restored.revoked_at == deleted.revoked_at  # listed again, never usable again
    assert [k.id for k in await db.api_keys.list_by_owner(ids["ada"])] == [key.id]
    with pytest.raises(AuthenticationError):
        await db.api_keys.verify(issued.token)
    await refused(owner, NotFoundError, lambda: db.api_keys.restore(key.id, actor="ada"))
    audit = await events(db, "api_key", key.id)
    # each refused verify of the deleted key is audited too
    assert [e.action for e in audit] == [
        "api_key.issue",
        "api_key.soft_delete",
        "api_key.refuse",
        "api_key.restore",
        "api_key.refuse",
    ]
    for event in audit[1:]:
        assert "secret_hash" not in (event.before or "") + (event.after or "")


# -- bad input, on every entity ------------------------------------------------------


@pytest.mark.parametrize("bad", [True, "1", 0, -1, 1.0])
async def test_a_bad_expected_version_is_refused_before_anything_is_sent(
    vdata_db: Any, owner: asyncpg.Connection, bad: Any
) -> None:
    db = vdata_db
    ada = (await make_users(db, "ada"))["ada"]
    project = await db.projects.create(NewProject(name="p"), owner_id=ada, actor="ada")
    task = await db.tasks.create(project.id, NewTask(title="t"), as_user=ada, actor="ada")
    role = await db.roles.create("editor", actor="admin")
    permission = await db.roles.create_permission("p:w", actor="admin")
    key = (await db.api_keys.issue(ada, name="k", actor="ada")).key
    mine = {"as_user": ada, "actor": "ada"}
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: db.users.soft_delete(ada, expected_version=bad, actor="a"),
        lambda: db.users.restore(ada, expected_version=bad, actor="a"),
        lambda: db.projects.soft_delete(project.id, expected_version=bad, **mine),
        lambda: db.projects.restore(project.id, expected_version=bad, **mine),
        lambda: db.tasks.soft_delete(task.id, expected_version=bad, **mine),
        lambda: db.tasks.restore(task.id, expected_version=bad, **mine),
        lambda: db.roles.soft_delete(role.id, expected_version=bad, actor="a"),
        lambda: db.roles.restore(role.id, expected_version=bad, actor="a"),
        lambda: db.roles.soft_delete_permission(permission.id, expected_version=bad, actor="a"),
        lambda: db.roles.restore_permission(permission.id, expected_version=bad, actor="a"),
        lambda: db.api_keys.soft_delete(key.id, expected_version=bad, actor="a"),
        lambda: db.api_keys.restore(key.id, expected_version=bad, actor="a"),
    ]
    for call in calls:
        error = await refused(owner, ValidationError, call)
        assert error.field == "expected_version"  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", ["too many", "not a UUID", "one string"])
async def test_bulk_calls_refuse_bad_ids_and_too_many(
    vdata_db: Any, owner: asyncpg.Connection, case: str
) -> None:
    db = vdata_db
    ada = (await make_users(db, "ada"))["ada"]
    ids: Any = {
        "too many": [uuid.uuid4() for _ in range(10_001)],
        "not a UUID": [uuid.uuid4(), 7],
        "one string": str(uuid.uuid4()),
    }[case]
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: db.users.soft_delete_many(ids, actor="a"),
        lambda: db.users.restore_many(ids, actor="a"),
        lambda: db.projects.soft_delete_many(ids, as_user=ada, actor="a"),
        lambda: db.projects.restore_many(ids, as_user=ada, actor="a"),
        lambda: db.tasks.soft_delete_many(ids, as_user=ada, actor="a"),
        lambda: db.tasks.restore_many(ids, as_user=ada, actor="a"),
        lambda: db.tasks.assign_many(ids, ada, as_user=ada, actor="a"),
    ]
    for call in calls:
        await refused(owner, ValidationError, call)
    await refused(
        owner,
        ValidationError,
        lambda: db.tasks.assign_many([uuid.uuid4()], "ada", as_user=ada, actor="a"),
    )
