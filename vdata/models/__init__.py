"""msgspec Structs of each area: rows (positional) and inputs (keyword-only)."""

from __future__ import annotations

from vdata.models.api_keys import ApiKey, ApiKeyUsage, IssuedApiKey
from vdata.models.audit import AuditDailyCount, AuditEvent, ChainReport
from vdata.models.projects import NewProject, Project, ProjectPatch, ProjectStats
from vdata.models.roles import Permission, Role
from vdata.models.sessions import IssuedSession, Session
from vdata.models.tasks import NewTask, Task, TaskPatch
from vdata.models.users import EmailVerification, NewUser, User, UserPatch

__all__ = [
    "ApiKey",
    "ApiKeyUsage",
    "AuditDailyCount",
    "AuditEvent",
    "ChainReport",
    "EmailVerification",
    "IssuedApiKey",
    "IssuedSession",
    "NewProject",
    "NewTask",
    "NewUser",
    "Permission",
    "Project",
    "ProjectPatch",
    "ProjectStats",
    "Role",
    "Session",
    "Task",
    "TaskPatch",
    "User",
    "UserPatch",
]
