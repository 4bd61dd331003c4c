"""RoleRepository on a real PostgreSQL: roles, permissions, grants, assignments, audit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration._users import (
    audit_events,
    cheap_settings,
    count_rows,
    new_user,
)
from vdata import ConflictError, ForeignKeyError, NotFoundError, ValidationError
from vdata.models.roles import Permission, Role

pytestmark = pytest.mark.integration


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters (users are created here)."""
    return cheap_settings()


async def test_create_get_and_list_roles_and_permissions(vdata_db: Any, owner: Any) -> None:
    roles = vdata_db.roles
    editor = await roles.create("editor", description="edits projects", actor="admin")
    assert isinstance(editor, Role) and editor.version == 1 and editor.created_by == "admin"
    admin = await roles.create("admin", actor="root")
    assert await roles.get(editor.id) == editor
    assert await roles.get_by_name("editor") == editor
    assert [r.name for r in await roles.list()] == ["admin", "editor"]
    write = await roles.create_permission("projects:write", actor="admin")
    assert isinstance(write, Permission)
    assert await roles.get_permission(write.id) == write
    assert await roles.get_permission_by_name("projects:write") == write
    assert [p.name for p in await roles.list_permissions()] == ["projects:write"]
    with pytest.raises(NotFoundError):
        await roles.get(uuid.uuid4())
    with pytest.raises(NotFoundError):
        await roles.get_by_name("Editor")
    with pytest.raises(NotFoundError):
        await roles.get_permission_by_name("nope")
    events = await audit_events(owner, admin.id)
    assert [(e["actor"], e["action"]) for e in events] == [("root", "role.create")]
    events = await audit_events(owner, write.id)
    assert [(e["actor"], e["action"]) for e in events] == [("admin", "permission.create")]


async def test_duplicates_conflict_and_bad_names_are_rejected(vdata_db: Any, owner: Any) -> None:
    roles = vdata_db.roles
    await roles.create("editor", actor="admin")
    await roles.create_permission("read", actor="admin")
    with pytest.raises(ConflictError) as role_dup:
        await roles.create("editor", actor="admin")
    assert role_dup.value.constraint == "unique_roles_name"
    with pytest.raises(ConflictError) as perm_dup:
        await roles.create_permission("read", actor="admin")
    assert perm_dup.value.constraint == "unique_permissions_name"
    for bad in ("Editor", "", "a" * 64, "x\x00y", "'; DROP TABLE app.roles; --", "1st"):
        with pytest.raises(ValidationError):
            await roles.create(bad, actor="admin")
        with pytest.raises(ValidationError):
            await roles.create_permission(bad, actor="admin")
    with pytest.raises(ValidationError):
        await roles.create("ok", description="d\x00", actor="admin")
    with pytest.raises(ValidationError):
        await roles.create("ok", description="d" * 10_001, actor="admin")
    with pytest.raises(ValidationError):
        await roles.create("ok")  # no actor
    assert await count_rows(owner, "roles") == 1
    assert await count_rows(owner, "permissions") == 1
    assert await count_rows(owner, "audit_log") == 2


async def test_injection_payload_in_description_is_stored_verbatim(vdata_db: Any) -> None:
    payload = "'); DELETE FROM app.roles; -- <b>x</b> $1 :name"
    role = await vdata_db.roles.create("editor", description=payload, actor=payload)
    again = await vdata_db.roles.get(role.id)
    assert again.description == payload and again.created_by == payload
    assert not await vdata_db.roles.has_permission(uuid.uuid4(), payload)


async def test_grants_assignments_and_effective_permissions(vdata_db: Any, owner: Any) -> None:
    roles = vdata_db.roles
    ada = await vdata_db.users.create(new_user("ada"), actor="admin")
    bob = await vdata_db.users.create(new_user("bob"), actor="admin")
    editor = await roles.create("editor", actor="admin")
    viewer = await roles.create("viewer", actor="admin")
    read = await roles.create_permission("projects:read", actor="admin")
    write = await roles.create_permission("projects:write", actor="admin")

    assert await roles.grant(editor.id, read.id, actor="admin")
    assert await roles.grant(editor.id, write.id, actor="admin")
    assert not await roles.grant(editor.id, write.id, actor="admin")  # already granted
    assert await roles.grant(viewer.id, read.id, actor="admin")
    assert await roles.assign(ada.id, editor.id, actor="admin")
    assert await roles.assign(ada.id, viewer.id, actor="admin")
    assert not await roles.assign(ada.id, viewer.id, actor="admin")
    assert await roles.assign(bob.id, viewer.id, actor="admin")

    assert await roles.permissions_of(ada.id) == {"projects:read", "projects:write"}
    assert await roles.permissions_of(bob.id) == {"projects:read"}
    assert await roles.permissions_of(uuid.uuid4()) == frozenset()
    assert [r.name for r in await roles.roles_of(ada.id)] == ["editor", "viewer"]
    assert await roles.has_permission(ada.id, "projects:write")
    assert not await roles.has_permission(bob.id, "projects:write")
    assert not await roles.has_permission(bob.id, "nope")

    assert await roles.revoke(editor.id, write.id, actor="admin")
    assert not await roles.revoke(editor.id, write.id, actor="admin")
    assert await roles.permissions_of(ada.id) == {"projects:read"}
    assert await roles.unassign(bob.id, viewer.id, actor="admin")
    assert not await roles.unassign(bob.id, viewer.id, actor="admin")
    assert await roles.permissions_of(bob.id) == frozenset()

    # An inactive or soft-deleted user holds nothing.
    await vdata_db.users.deactivate(ada.id, actor="admin")
    assert await roles.permissions_of(ada.id) == frozenset()
    assert not await roles.has_permission(ada.id, "projects:read")
    await vdata_db.users.activate(ada.id, actor="admin")
    assert await roles.has_permission(ada.id, "projects:read")

    with pytest.raises(ForeignKeyError):
        await roles.grant(uuid.uuid4(), read.id, actor="admin")
    with pytest.raises(ForeignKeyError):
        await roles.assign(uuid.uuid4(), editor.id, actor="admin")

    role_events = [(e["actor"], e["action"]) for e in await audit_events(owner, editor.id)]
    assert role_events == [
        ("admin", "role.create"),
        ("admin", "role.grant"),
        ("admin", "role.grant"),
        ("admin", "role.revoke"),
    ]
    bob_events = [e["action"] for e in await audit_events(owner, bob.id)]
    assert bob_events == ["user.create", "user.role_assign", "user.role_unassign"]
