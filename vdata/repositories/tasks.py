"""Tasks: the named queries in sql/tasks/, typed, with access control.

Reads see a task when its project is visible to the user (owned or public)
or when the task is assigned to the user; anything else is NotFoundError,
so private projects do not leak. Content and status changes are for the
project owner and the task's assignee; create, assign and delete for the
owner only (PermissionDeniedError otherwise). An archived project's tasks
are read-only. Status changes follow ``app.task_status_transition_allowed``
(docs/usage/tasks.md); an illegal one is ValidationError and changes nothing.
"""

from __future__ import annotations

__all__ = ["COPY_COLUMNS", "TaskRepository"]

import uuid
from collections.abc import Sequence

import msgspec

from vdata.errors import StaleVersionError, ValidationError
from vdata.models.tasks import NewTask, Task, TaskPatch
from vdata.queries import query
from vdata.repositories._task_reads import TaskReads, check_status
from vdata.repositories._task_refusals import TaskRefusals
from vdata.validation import check_identifier, check_text

_INSERT = query("tasks.insert_task", Task)
_UPDATE = query("tasks.update_task", Task)
_ASSIGN = query("tasks.update_task_assignee", Task)
_STATUS = query("tasks.update_task_status", Task)
_STATUS_MANY = query("tasks.update_tasks_status", Task)
_DELETE = query("tasks.soft_delete_task", Task)
_LOCK_PROJECT = query("tasks.lock_project_for_new_tasks")
_LOCK_USERS = query("tasks.count_active_users_locked")
_AUDIT_CREATED = query("tasks.insert_task_audit_events", Task)

# Columns COPY fills; the rest come from defaults and app.stamp_row().
COPY_COLUMNS = (
    "id",
    "project_id",
    "title",
    "description",
    "priority",
    "assignee_id",
    "due_at",
    "created_by",
    "updated_by",
)
MAX_BULK = 10_000


def _title(value: str) -> str:
    return check_identifier("title", value, max_length=500)


def _description(value: str) -> str:
    return check_text("description", value, max_length=10_000)


def _priority(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
        raise ValidationError("priority must be an integer from 0 to 4", field="priority")
    return value


class TaskRepository(TaskReads, TaskRefusals):
    """Read and write ``app.tasks`` on behalf of a user (``as_user``)."""

    __slots__ = ()

    async def create(
        self, project_id: uuid.UUID, new: NewTask, *, as_user: uuid.UUID, actor: str | None = None
    ) -> Task:
        """Create a task in a project *as_user* owns; the access check is in the insert itself.

        Raise NotFoundError (project not visible), PermissionDeniedError (not
        the owner, or archived), ValidationError (bad input, inactive assignee).
        """
        created = await self._one(
            _INSERT,
            project_id=project_id,
            as_user=as_user,
            title=_title(new.title),
            description=_description(new.description),
            priority=_priority(new.priority),
            assignee_id=new.assignee_id,
            due_at=new.due_at,
            actor=self._actor(actor),
        )
        if created is None:
            await self._refuse_project(project_id, as_user, new.assignee_id)
        return created  # type: ignore[no-any-return]

    async def create_many(
        self,
        project_id: uuid.UUID,
        new: Sequence[NewTask],
        *,
        as_user: uuid.UUID,
        actor: str | None = None,
    ) -> list[Task]:
        """Create many tasks through COPY, with one audit event each, in one transaction.

        The project is share-locked and checked first, as for ``create``; all
        or nothing. Return the tasks in the order given.
        """
        who = self._actor(actor)
        if len(new) > MAX_BULK:
            raise ValidationError(f"at most {MAX_BULK} tasks at once", field="tasks")
        records = [
            (
                uuid.uuid4(),
                project_id,
                _title(n.title),
                _description(n.description),
                _priority(n.priority),
                n.assignee_id,
                n.due_at,
                who,
                who,
            )
            for n in new
        ]
        if not records:
            return []
        ids = [r[0] for r in records]
        assignees = sorted({n.assignee_id for n in new if n.assignee_id is not None})
        async with self._db.transaction() as tx:
            locked = await tx.fetchval(
                _LOCK_PROJECT, _LOCK_PROJECT.bind({"project_id": project_id, "as_user": as_user})
            )
            if locked is None:
                await self._refuse_project(project_id, as_user, None)
            if assignees:
                active = await tx.fetchval(_LOCK_USERS, _LOCK_USERS.bind({"ids": assignees}))
                if active != len(assignees):
                    raise ValidationError(
                        "every assignee must be an active user", field="assignee_id"
                    )
            await tx.copy_records("tasks", schema="app", columns=COPY_COLUMNS, records=records)
            rows = await tx.fetch(_AUDIT_CREATED, _AUDIT_CREATED.bind({"ids": ids, "actor": who}))
        return [Task(*row[:]) for row in rows]

    async def update(
        self,
        task_id: uuid.UUID,
        patch: TaskPatch,
        *,
        expected_version: int,
        as_user: uuid.UUID,
        actor: str | None = None,
    ) -> Task:
        """Apply *patch* at *expected_version*; return the new row. Raise as ``set_status``."""
        unset = msgspec.UNSET
        updated = await self._one(
            _UPDATE,
            id=task_id,
            as_user=as_user,
            version=expected_version,
            title=None if patch.title is unset else _title(patch.title),
            description=None if patch.description is unset else _description(patch.description),
            priority=None if patch.priority is unset else _priority(patch.priority),
            set_due_at=patch.due_at is not unset,
            due_at=None if patch.due_at is unset else patch.due_at,
            actor=self._actor(actor),
        )
        if updated is None:
            await self._refuse(task_id, as_user, version=expected_version)
        return updated  # type: ignore[no-any-return]

    async def assign(
        self,
        task_id: uuid.UUID,
        assignee_id: uuid.UUID | None,
        *,
        as_user: uuid.UUID,
        actor: str | None = None,
    ) -> Task:
        """Assign the task to an active user (None: unassign); project owner only.

        Raise ValidationError if the assignee is not an active user.
        """
        assigned = await self._one(
            _ASSIGN, id=task_id, as_user=as_user, assignee_id=assignee_id, actor=self._actor(actor)
        )
        if assigned is None:
            await self._refuse(task_id, as_user, owner_only=True, assignee_id=assignee_id)
        return assigned  # type: ignore[no-any-return]

    async def set_status(
        self,
        task_id: uuid.UUID,
        status: str,
        *,
        as_user: uuid.UUID,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Task:
        """Move the task to *status*; ``completed_at`` is set on done and cleared otherwise.

        Raise ValidationError for a transition the rules forbid (nothing
        changes), NotFoundError, PermissionDeniedError, StaleVersionError.
        """
        changed = await self._one(
            _STATUS,
            id=task_id,
            as_user=as_user,
            status=check_status(status),
            version=expected_version,
            actor=self._actor(actor),
        )
        if changed is None:
            await self._refuse(task_id, as_user, status=status, version=expected_version)
        return changed  # type: ignore[no-any-return]

    async def set_status_many(
        self,
        task_ids: Sequence[uuid.UUID],
        status: str,
        *,
        as_user: uuid.UUID,
        actor: str | None = None,
    ) -> list[Task]:
        """Move every task in *task_ids* to *status* in one statement, all or nothing.

        Raise as ``set_status`` for the first task that does not qualify.
        """
        ids = list(dict.fromkeys(task_ids))
        if len(ids) > MAX_BULK:
            raise ValidationError(f"at most {MAX_BULK} tasks at once", field="task_ids")
        if not ids:
            return []
        changed = await self._many(
            _STATUS_MANY,
            ids=ids,
            as_user=as_user,
            status=check_status(status),
            actor=self._actor(actor),
        )
        if not changed:
            for task_id in ids:  # find the one to blame; only on failure
                await self._refuse(task_id, as_user, status=status, explain_only=True)
            raise StaleVersionError("task", None)  # every one qualified a moment ago
        return changed

    async def soft_delete(
        self, task_id: uuid.UUID, *, as_user: uuid.UUID, actor: str | None = None
    ) -> Task:
        """Soft-delete the task; project owner only. Return the deleted row."""
        deleted = await self._one(_DELETE, id=task_id, as_user=as_user, actor=self._actor(actor))
        if deleted is None:
            await self._refuse(task_id, as_user, owner_only=True)
        return deleted  # type: ignore[no-any-return]
