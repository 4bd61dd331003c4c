"""vdata's own domain: one repository per area, built on the public engine API only."""

from __future__ import annotations

__all__ = ["BUNDLED_AREAS"]

from collections.abc import Mapping

from vdata.engine.repository import Repository
from vdata.repositories.api_keys import ApiKeyRepository
from vdata.repositories.audit import AuditRepository
from vdata.repositories.maintenance import MaintenanceRepository
from vdata.repositories.projects import ProjectRepository
from vdata.repositories.roles import RoleRepository
from vdata.repositories.sessions import SessionRepository
from vdata.repositories.tasks import TaskRepository
from vdata.repositories.users import UserRepository

# The areas every vdata.Database holds unless connect(bundled=False).
BUNDLED_AREAS: Mapping[str, type[Repository]] = {
    "users": UserRepository,
    "roles": RoleRepository,
    "api_keys": ApiKeyRepository,
    "sessions": SessionRepository,
    "audit": AuditRepository,
    "projects": ProjectRepository,
    "tasks": TaskRepository,
    "maintenance": MaintenanceRepository,
}
