"""Helpers for the audit, projects and tasks tests: people, projects in a given state."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration._users import new_user
from vdata.models.audit import AuditEvent
from vdata.models.projects import NewProject, Project

# The states of the access matrix, from the point of view of a project.
STATES = ("private", "public", "archived", "archived_public", "deleted")


async def make_users(db: Any, *names: str) -> dict[str, uuid.UUID]:
    """Create one active user per name; return their ids by name."""
    ids = {}
    for name in names:
        user = await db.users.create(new_user(name), actor="admin")
        ids[name] = user.id
    return ids


async def project_in_state(db: Any, owner: uuid.UUID, state: str, name: str) -> Project:
    """Create a project of *owner* and bring it to *state* (one of STATES)."""
    project: Project = await db.projects.create(
        NewProject(name=name, is_public=state.endswith("public")), owner_id=owner, actor="owner"
    )
    if state.startswith("archived"):
        project = await db.projects.archive(project.id, as_user=owner, actor="owner")
    elif state == "deleted":
        project = await db.projects.soft_delete(project.id, as_user=owner, actor="owner")
    return project


async def events(db: Any, entity_type: str, entity_id: object) -> list[AuditEvent]:
    """Return the audit events of one entity, oldest first."""
    found: list[AuditEvent] = await db.audit.history(entity_type, str(entity_id))
    return found
