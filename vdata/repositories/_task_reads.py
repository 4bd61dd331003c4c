"""Reads of tasks (get, listings, overdue, due soon), the base of TaskRepository."""

from __future__ import annotations

__all__ = ["TaskReads", "check_status"]

import datetime as dt
import uuid
from typing import Any

from vdata.engine.repository import Repository, Slice
from vdata.errors import ValidationError
from vdata.models.tasks import TASK_STATUSES, Task
from vdata.queries import Query, query

_GET = query("tasks.get_task_by_id", Task)
_BY_PROJECT = query("tasks.list_tasks_by_project", Task)
_BY_ASSIGNEE = query("tasks.list_tasks_by_assignee", Task)
_BY_STATUS = query("tasks.list_tasks_by_status", Task)
_OVERDUE = query("tasks.list_tasks_overdue", Task)
_DUE_SOON = query("tasks.list_tasks_due_soon", Task)


def check_status(value: str) -> str:
    """Return *value* if it is a known task status; raise ValidationError."""
    if not isinstance(value, str) or value not in TASK_STATUSES:
        raise ValidationError(f"status must be one of {sorted(TASK_STATUSES)}", field="status")
    return value


def _by_created(task: Task) -> tuple[dt.datetime, uuid.UUID]:
    return (task.created_at, task.id)


def _after_created(position: tuple[Any, ...] | None) -> dict[str, object]:
    if position is None:
        return {"after_at": None, "after_id": None}
    return {"after_at": position[0], "after_id": position[1]}


class TaskReads(Repository):
    """What any user may read of ``app.tasks``: tasks of visible projects, or assigned."""

    __slots__ = ()

    async def get(self, task_id: uuid.UUID, *, as_user: uuid.UUID) -> Task:
        """Return the task if *as_user* may see it; raise NotFoundError otherwise."""
        return await self._require(  # type: ignore[no-any-return]
            _GET, "task", task_id, id=task_id, as_user=as_user
        )

    async def list_by_project(
        self,
        project_id: uuid.UUID,
        *,
        as_user: uuid.UUID,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Slice[Task]:
        """Return one keyset page (oldest first) of the project's tasks *as_user* may see."""
        return await self._list(
            _BY_PROJECT, cursor, limit, status, project_id=project_id, as_user=as_user
        )

    async def list_by_assignee(
        self,
        assignee_id: uuid.UUID,
        *,
        as_user: uuid.UUID,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Slice[Task]:
        """Return one keyset page of the tasks assigned to *assignee_id* that *as_user* may see."""
        return await self._list(
            _BY_ASSIGNEE, cursor, limit, status, assignee_id=assignee_id, as_user=as_user
        )

    async def list_by_status(
        self, status: str, *, as_user: uuid.UUID, cursor: str | None = None, limit: int = 50
    ) -> Slice[Task]:
        """Return one keyset page of the tasks in *status* that *as_user* may see."""
        return await self._list(_BY_STATUS, cursor, limit, status, as_user=as_user)

    async def _list(
        self, q: Query, cursor: str | None, limit: int, status: str | None, **filters: object
    ) -> Slice[Task]:
        status = None if status is None else check_status(status)
        return await self._keyset_page(
            q, cursor, limit, _by_created, _after_created, status=status, **filters
        )

    async def overdue(
        self, *, as_user: uuid.UUID, project_id: uuid.UUID | None = None, limit: int = 100
    ) -> list[Task]:
        """Return open tasks *as_user* may see whose due time has passed, most overdue first."""
        _, limit = self._page_args(0, limit)
        return await self._many(_OVERDUE, as_user=as_user, project_id=project_id, page_size=limit)

    async def due_soon(
        self,
        *,
        as_user: uuid.UUID,
        within: dt.timedelta = dt.timedelta(days=1),
        project_id: uuid.UUID | None = None,
        limit: int = 100,
    ) -> list[Task]:
        """Return open tasks *as_user* may see due from now to now + *within*, soonest first."""
        _, limit = self._page_args(0, limit)
        return await self._many(
            _DUE_SOON, as_user=as_user, within=within, project_id=project_id, page_size=limit
        )
