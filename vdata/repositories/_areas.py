"""The ``<area>`` attributes shared by Database and Transaction."""

from __future__ import annotations

__all__ = ["Areas"]

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vdata.repositories.api_keys import ApiKeyRepository
    from vdata.repositories.audit import AuditRepository
    from vdata.repositories.projects import ProjectRepository
    from vdata.repositories.roles import RoleRepository
    from vdata.repositories.sessions import SessionRepository
    from vdata.repositories.tasks import TaskRepository
    from vdata.repositories.users import UserRepository


class Areas:
    """Mixin: one repository per area, bound to ``self`` as its executor.

    Each area is a ``cached_property``, so every access after the first is a
    plain attribute lookup, which matters on the hot path (``db.users.get``).
    Imports are local so that importing vdata does not load every repository.
    """

    actor: str | None

    @cached_property
    def users(self) -> UserRepository:
        """Users: accounts, passwords, login, email verification."""
        from vdata.repositories.users import UserRepository

        return UserRepository(self)  # type: ignore[arg-type]

    @cached_property
    def roles(self) -> RoleRepository:
        """Roles and permissions."""
        from vdata.repositories.roles import RoleRepository

        return RoleRepository(self)  # type: ignore[arg-type]

    @cached_property
    def api_keys(self) -> ApiKeyRepository:
        """API keys: issue, verify, rotate, revoke."""
        from vdata.repositories.api_keys import ApiKeyRepository

        return ApiKeyRepository(self)  # type: ignore[arg-type]

    @cached_property
    def sessions(self) -> SessionRepository:
        """Login sessions."""
        from vdata.repositories.sessions import SessionRepository

        return SessionRepository(self)  # type: ignore[arg-type]

    @cached_property
    def audit(self) -> AuditRepository:
        """The append-only audit trail."""
        from vdata.repositories.audit import AuditRepository

        return AuditRepository(self)  # type: ignore[arg-type]

    @cached_property
    def projects(self) -> ProjectRepository:
        """Projects."""
        from vdata.repositories.projects import ProjectRepository

        return ProjectRepository(self)  # type: ignore[arg-type]

    @cached_property
    def tasks(self) -> TaskRepository:
        """Tasks of projects."""
        from vdata.repositories.tasks import TaskRepository

        return TaskRepository(self)  # type: ignore[arg-type]
