"""msgspec Structs of each area: rows (positional) and inputs (keyword-only)."""

from __future__ import annotations

from vdata.models.api_keys import ApiKey, ApiKeyUsage, ApiKeyUsageDay, IssuedApiKey
from vdata.models.audit import (
    AuditActorCount,
    AuditDailyCount,
    AuditEntityTypeCount,
    AuditEvent,
    ChainReport,
)
from vdata.models.maintenance import CleanupReport
from vdata.models.projects import NewProject, Project, ProjectPatch, ProjectStats
from vdata.models.roles import Permission, Role
from vdata.models.sessions import IssuedSession, Session
from vdata.models.tasks import NewTask, Task, TaskFilter, TaskPatch
from vdata.models.users import (
    EmailVerification,
    NewUser,
    PasswordReset,
    RevokedCredentials,
    User,
    UserPatch,
)

__all__ = [
    "ApiKey",
    "ApiKeyUsage",
    "ApiKeyUsageDay",
    "AuditActorCount",
    "AuditDailyCount",
    "AuditEntityTypeCount",
    "AuditEvent",
    "ChainReport",
    "CleanupReport",
    "EmailVerification",
    "IssuedApiKey",
    "IssuedSession",
    "NewProject",
    "NewTask",
    "NewUser",
    "PasswordReset",
    "Permission",
    "Project",
    "ProjectPatch",
    "ProjectStats",
    "RevokedCredentials",
    "Role",
    "Session",
    "Task",
    "TaskFilter",
    "TaskPatch",
    "User",
    "UserPatch",
]
