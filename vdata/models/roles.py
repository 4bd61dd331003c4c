"""Roles and permissions: row Structs (positional), built as ``Role(*record)``."""

from __future__ import annotations

__all__ = ["Permission", "Role"]

from datetime import datetime
from uuid import UUID

import msgspec


class Role(msgspec.Struct, frozen=True):
    """A named set of permissions, e.g. ``admin`` or ``project-editor``.

    The field order is the column order of the role queries in ``sql/roles/``.
    """

    id: UUID
    name: str
    description: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    version: int
    deleted_at: datetime | None
    deleted_by: str | None


class Permission(msgspec.Struct, frozen=True):
    """A named capability that code checks, e.g. ``projects:write``.

    The field order is the column order of the permission queries in ``sql/roles/``.
    """

    id: UUID
    name: str
    description: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    version: int
    deleted_at: datetime | None
    deleted_by: str | None
