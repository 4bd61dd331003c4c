"""Roles and permissions: the named queries of ``sql/roles/``, typed."""

from __future__ import annotations

__all__ = ["NAME_PATTERN", "RoleRepository"]

import builtins
import re
from typing import TypeVar
from uuid import UUID

from vdata.engine.repository import Repository
from vdata.errors import ValidationError
from vdata.models.roles import Permission, Role
from vdata.queries import Query, load
from vdata.security.validation import check_identifier, check_text, check_version

T = TypeVar("T")

_Q = load()

_INSERT_ROLE = _Q.bind("roles.insert_role", Role)
_GET_ROLE = _Q.bind("roles.get_role_by_id", Role)
_GET_ROLE_BY_NAME = _Q.bind("roles.get_role_by_name", Role)
_LIST_ROLES = _Q.bind("roles.list_roles", Role)
_INSERT_PERMISSION = _Q.bind("roles.insert_permission", Permission)
_GET_PERMISSION = _Q.bind("roles.get_permission_by_id", Permission)
_GET_PERMISSION_BY_NAME = _Q.bind("roles.get_permission_by_name", Permission)
_LIST_PERMISSIONS = _Q.bind("roles.list_permissions", Permission)
_GRANT = _Q.bind("roles.grant_permission", bool)
_REVOKE = _Q.bind("roles.revoke_permission", bool)
_ASSIGN = _Q.bind("roles.assign_role", bool)
_UNASSIGN = _Q.bind("roles.unassign_role", bool)
_PERMISSION_NAMES = _Q.bind("roles.list_permission_names_by_user_id", list)
_HAS_PERMISSION = _Q.bind("roles.user_has_permission", bool)
_ROLES_OF_USER = _Q.bind("roles.list_roles_by_user_id", Role)
_SOFT_DELETE_ROLE = _Q.bind("roles.soft_delete_role", Role)
_RESTORE_ROLE = _Q.bind("roles.restore_role", Role, entity="deleted role")
_ROLE_VERSION = _Q.bind("roles.get_role_version", int)
_DELETED_ROLE_VERSION = _Q.bind("roles.get_deleted_role_version", int)
_SOFT_DELETE_PERMISSION = _Q.bind("roles.soft_delete_permission", Permission)
_RESTORE_PERMISSION = _Q.bind("roles.restore_permission", Permission, entity="deleted permission")
_PERMISSION_VERSION = _Q.bind("roles.get_permission_version", int)
_DELETED_PERMISSION_VERSION = _Q.bind("roles.get_deleted_permission_version", int)

# The schema's check_roles_name_shape / check_permissions_name_shape.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,62}$")
DESCRIPTION_MAX = 10_000


def _name(field: str, value: str) -> str:
    check_identifier(field, value, max_length=63)
    if not NAME_PATTERN.match(value):
        raise ValidationError(
            f"{field} must start with a-z and hold only a-z 0-9 _ . : - (at most 63)",
            field=field,
        )
    return value


class RoleRepository(Repository):
    """Read and write roles, permissions, grants and role assignments.

    Writes take ``actor=`` (or the transaction's actor) and record their
    audit event in the same statement.
    """

    __slots__ = ()

    async def create(self, name: str, *, description: str = "", actor: str | None = None) -> Role:
        """Create the role *name*; raise ConflictError (``unique_roles_name``) if it exists."""
        who = self.actor(actor)
        _name("name", name)
        check_text("description", description, max_length=DESCRIPTION_MAX)
        return await self.one(_INSERT_ROLE, name=name, description=description, actor=who)

    async def get(self, id: UUID) -> Role:
        """Return the live role *id*; raise NotFoundError."""
        return await self.one(_GET_ROLE, id=id)

    async def get_by_name(self, name: str) -> Role:
        """Return the live role named *name*; raise NotFoundError."""
        check_text("name", name, max_length=200)
        return await self.one(_GET_ROLE_BY_NAME, name=name)

    async def list(self) -> builtins.list[Role]:
        """Return every live role, by name."""
        return await self.many(_LIST_ROLES)

    async def soft_delete(
        self, id: UUID, *, expected_version: int | None = None, actor: str | None = None
    ) -> Role:
        """Soft-delete the live role *id*; it keeps its name and grants, and grants nothing.

        Raise NotFoundError, StaleVersionError (with *expected_version*).
        """
        return await self._versioned(_SOFT_DELETE_ROLE, _ROLE_VERSION, id, expected_version, actor)

    async def restore(
        self, id: UUID, *, expected_version: int | None = None, actor: str | None = None
    ) -> Role:
        """Undo the soft delete of role *id*: its grants apply again. Never ConflictError.

        Raise NotFoundError unless it is soft-deleted, StaleVersionError.
        """
        return await self._versioned(
            _RESTORE_ROLE, _DELETED_ROLE_VERSION, id, expected_version, actor
        )

    async def create_permission(
        self, name: str, *, description: str = "", actor: str | None = None
    ) -> Permission:
        """Create the permission *name*; raise ConflictError (``unique_permissions_name``)."""
        who = self.actor(actor)
        _name("name", name)
        check_text("description", description, max_length=DESCRIPTION_MAX)
        return await self.one(_INSERT_PERMISSION, name=name, description=description, actor=who)

    async def get_permission(self, id: UUID) -> Permission:
        """Return the live permission *id*; raise NotFoundError."""
        return await self.one(_GET_PERMISSION, id=id)

    async def get_permission_by_name(self, name: str) -> Permission:
        """Return the live permission named *name*; raise NotFoundError."""
        check_text("name", name, max_length=200)
        return await self.one(_GET_PERMISSION_BY_NAME, name=name)

    async def list_permissions(self) -> builtins.list[Permission]:
        """Return every live permission, by name."""
        return await self.many(_LIST_PERMISSIONS)

    async def soft_delete_permission(
        self, id: UUID, *, expected_version: int | None = None, actor: str | None = None
    ) -> Permission:
        """Soft-delete the live permission *id*; no role grants it until it is restored.

        Raise NotFoundError, StaleVersionError (with *expected_version*).
        """
        return await self._versioned(
            _SOFT_DELETE_PERMISSION, _PERMISSION_VERSION, id, expected_version, actor
        )

    async def restore_permission(
        self, id: UUID, *, expected_version: int | None = None, actor: str | None = None
    ) -> Permission:
        """Undo the soft delete of permission *id*. Never ConflictError.

        Raise NotFoundError unless it is soft-deleted, StaleVersionError.
        """
        return await self._versioned(
            _RESTORE_PERMISSION, _DELETED_PERMISSION_VERSION, id, expected_version, actor
        )

    async def grant(self, role_id: UUID, permission_id: UUID, *, actor: str | None = None) -> bool:
        """Let role *role_id* grant *permission_id*; return False if it already did.

        Raise ForeignKeyError for an unknown role or permission.
        """
        who = self.actor(actor)
        return bool(
            await self.value(_GRANT, role_id=role_id, permission_id=permission_id, actor=who)
        )

    async def revoke(self, role_id: UUID, permission_id: UUID, *, actor: str | None = None) -> bool:
        """Stop role *role_id* granting *permission_id*; return False if it did not."""
        who = self.actor(actor)
        return bool(
            await self.value(_REVOKE, role_id=role_id, permission_id=permission_id, actor=who)
        )

    async def assign(self, user_id: UUID, role_id: UUID, *, actor: str | None = None) -> bool:
        """Give user *user_id* the role *role_id*; return False if it already had it.

        Raise ForeignKeyError for an unknown user or role.
        """
        who = self.actor(actor)
        return bool(await self.value(_ASSIGN, user_id=user_id, role_id=role_id, actor=who))

    async def unassign(self, user_id: UUID, role_id: UUID, *, actor: str | None = None) -> bool:
        """Take the role *role_id* from user *user_id*; return False if it did not have it."""
        who = self.actor(actor)
        return bool(await self.value(_UNASSIGN, user_id=user_id, role_id=role_id, actor=who))

    async def roles_of(self, user_id: UUID) -> builtins.list[Role]:
        """Return the live roles user *user_id* holds, by name."""
        return await self.many(_ROLES_OF_USER, user_id=user_id)

    async def permissions_of(self, user_id: UUID) -> frozenset[str]:
        """Return the names of every permission *user_id* holds through its roles (one query).

        Empty for an unknown, inactive or soft-deleted user; soft-deleted
        roles and permissions grant nothing.
        """
        names = await self.value(_PERMISSION_NAMES, user_id=user_id)
        return frozenset(names or ())

    async def has_permission(self, user_id: UUID, permission: str) -> bool:
        """Return whether *user_id* holds the permission named *permission* (see permissions_of)."""
        if not isinstance(permission, str) or len(permission) > 200:
            return False
        check_text("permission", permission, max_length=200)
        return bool(await self.value(_HAS_PERMISSION, user_id=user_id, permission=permission))

    async def _versioned(
        self,
        q: Query[T],
        version_of: Query[int],
        id: UUID,
        expected_version: int | None,
        actor: str | None,
    ) -> T:
        who = self.actor(actor)
        version = check_version(expected_version)
        return await self.update_versioned(q, version_of, version, id=id, actor=who)
