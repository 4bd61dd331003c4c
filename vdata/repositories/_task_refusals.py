"""Why a write to a task touched no row: the errors of TaskRepository's writes.

The writes check access inside the statement itself; only when one changes
nothing do these reads find out why (not visible, not allowed, archived, a
forbidden status change, an inactive assignee, or a concurrent change) and
raise the matching error. A base of ``TaskRepository``.
"""

from __future__ import annotations

__all__ = ["TaskRefusals"]

import uuid
from typing import NoReturn

from vdata.engine.repository import Repository
from vdata.errors import NotFoundError, PermissionDeniedError, StaleVersionError, ValidationError
from vdata.models.projects import ProjectAccess
from vdata.models.tasks import TaskAccess
from vdata.queries import query

_ACCESS = query("tasks.get_task_access", TaskAccess)
_PROJECT_ACCESS = query("projects.get_project_access", ProjectAccess)
_USER_ACTIVE = query("tasks.get_user_is_active")
_ALLOWED = query("tasks.get_status_transition_allowed")


class TaskRefusals(Repository):
    """Explain a task write that touched no row by raising the error that fits."""

    __slots__ = ()

    async def _refuse_project(
        self, project_id: uuid.UUID, as_user: uuid.UUID, assignee_id: uuid.UUID | None
    ) -> NoReturn:
        """Raise why a task could not be created in *project_id*."""
        access = await self._one(_PROJECT_ACCESS, id=project_id, as_user=as_user)
        if access is None or not access.visible:
            raise NotFoundError("project", project_id)
        if not access.is_owner:
            raise PermissionDeniedError("only the project owner may add tasks")
        if access.archived:
            raise PermissionDeniedError("the project is archived; restore it first")
        await self._check_assignee(assignee_id)
        raise StaleVersionError("project", project_id)  # it changed under us; try again

    async def _check_assignee(self, assignee_id: uuid.UUID | None) -> None:
        if assignee_id is not None and not await self._value(_USER_ACTIVE, id=assignee_id):
            raise ValidationError("the assignee must be an active user", field="assignee_id")

    async def _refuse(
        self,
        task_id: uuid.UUID,
        as_user: uuid.UUID,
        *,
        owner_only: bool = False,
        status: str | None = None,
        version: int | None = None,
        assignee_id: uuid.UUID | None = None,
        explain_only: bool = False,
    ) -> None:
        """Raise why a write to *task_id* touched no row; with *explain_only*, maybe return."""
        access = await self._one(_ACCESS, id=task_id, as_user=as_user)
        if access is None or not access.visible:
            raise NotFoundError("task", task_id)
        if not (access.is_owner if owner_only else access.can_write):
            who = "the project owner" if owner_only else "the project owner or the assignee"
            raise PermissionDeniedError(f"only {who} may change this task")
        if access.archived:
            raise PermissionDeniedError("the project is archived; restore it first")
        current = access.status
        if status is not None and not await self._value(
            _ALLOWED, from_status=current, to_status=status
        ):
            raise ValidationError(f"a task cannot move from {current} to {status}", field="status")
        await self._check_assignee(assignee_id)
        if explain_only:
            return
        raise StaleVersionError("task", task_id, expected_version=version)
