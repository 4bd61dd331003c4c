"""Structs of tasks: the row, its inputs and its statuses."""

from __future__ import annotations

__all__ = [
    "TASK_STATUSES",
    "DeletedTaskAccess",
    "NewTask",
    "Task",
    "TaskAccess",
    "TaskFilter",
    "TaskPatch",
    "TaskStatus",
]

import datetime as dt
import uuid
from typing import Literal, get_args

import msgspec

TaskStatus = Literal["todo", "in_progress", "blocked", "done", "cancelled"]
TASK_STATUSES: frozenset[str] = frozenset(get_args(TaskStatus))


class Task(msgspec.Struct, frozen=True):
    """One row of ``app.tasks``, built positionally from a Record."""

    id: uuid.UUID
    project_id: uuid.UUID
    title: str
    description: str
    status: str
    priority: int
    assignee_id: uuid.UUID | None
    due_at: dt.datetime | None
    completed_at: dt.datetime | None
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    version: int
    deleted_at: dt.datetime | None
    deleted_by: str | None


class NewTask(msgspec.Struct, frozen=True, kw_only=True):
    """What a caller gives to create a task; it starts in status ``todo``."""

    title: str
    description: str = ""
    priority: int = 2
    assignee_id: uuid.UUID | None = None
    due_at: dt.datetime | None = None


class TaskFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Optional filters of a task listing; None (the default) leaves one out.

    Lists are membership (``status = any(statuses)``; an empty list matches
    nothing). Priorities are inclusive; time ranges are half-open,
    ``from <= t < to``, either end optional; datetimes must be timezone-aware.
    """

    statuses: list[str] | None = None
    assignee_ids: list[uuid.UUID] | None = None
    priority_min: int | None = None
    priority_max: int | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    updated_from: dt.datetime | None = None
    updated_to: dt.datetime | None = None
    due_from: dt.datetime | None = None
    due_to: dt.datetime | None = None


class TaskPatch(msgspec.Struct, frozen=True, kw_only=True):
    """Fields to change on a task; UNSET leaves a field as it is.

    ``due_at=None`` clears the due date; status and assignee have their own
    methods (``set_status``, ``assign``) because they carry rules.
    """

    title: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    priority: int | msgspec.UnsetType = msgspec.UNSET
    due_at: dt.datetime | msgspec.UnsetType | None = msgspec.UNSET


class TaskAccess(msgspec.Struct, frozen=True):
    """What one user may do with one live task; explains a refused write."""

    version: int
    status: str
    archived: bool
    is_owner: bool
    can_write: bool
    visible: bool


class DeletedTaskAccess(msgspec.Struct, frozen=True):
    """One soft-deleted task of a live project, for one user; explains a refused restore."""

    version: int
    is_owner: bool
    archived: bool
