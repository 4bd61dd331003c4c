"""Tasks: the named queries in sql/tasks/, typed, with access control.

Reads see a task when its project is visible to the user (owned or public)
or when the task is assigned to the user; anything else is NotFoundError,
so private projects do not leak. Content and status changes are for the
project owner and the task's assignee; create, assign and delete for the
owner only (PermissionDeniedError otherwise), and so are soft delete and
restore: a soft-deleted task is visible to nobody, so restoring it as
anyone else is NotFoundError. An archived project's tasks are read-only.
Status changes follow ``app.task_status_transition_allowed``
(docs/usage/tasks.md); an illegal one is ValidationError and changes nothing.
"""

from __future__ import annotations

__all__ = ["TaskRepository", "check_status"]

import datetime as dt
import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any, NoReturn

import msgspec

from vdata.engine.repository import Page, Repository, Slice
from vdata.errors import NotFoundError, PermissionDeniedError, StaleVersionError, ValidationError
from vdata.models.projects import ProjectAccess
from vdata.models.tasks import (
    TASK_STATUSES,
    DeletedTaskAccess,
    NewTask,
    Task,
    TaskAccess,
    TaskFilter,
    TaskPatch,
)
from vdata.queries import Query, load
from vdata.security.validation import (
    check_identifier,
    check_ids,
    check_input,
    check_instant,
    check_text,
    check_version,
)

_Q = load()

_GET = _Q.bind("tasks.get_task_by_id", Task)
_BY_PROJECT = _Q.bind("tasks.list_tasks_by_project", Task, lag_tolerant=True)
_BY_ASSIGNEE = _Q.bind("tasks.list_tasks_by_assignee", Task, lag_tolerant=True)
_BY_STATUS = _Q.bind("tasks.list_tasks_by_status", Task, lag_tolerant=True)
_OVERDUE = _Q.bind("tasks.list_tasks_overdue", Task, lag_tolerant=True)
_DUE_SOON = _Q.bind("tasks.list_tasks_due_soon", Task, lag_tolerant=True)
_INSERT = _Q.bind("tasks.insert_task", Task)
_UPDATE = _Q.bind("tasks.update_task", Task)
_ASSIGN = _Q.bind("tasks.update_task_assignee", Task)
_STATUS = _Q.bind("tasks.update_task_status", Task)
_STATUS_MANY = _Q.bind("tasks.update_tasks_status", Task)
_DELETE = _Q.bind("tasks.soft_delete_task", Task)
_RESTORE = _Q.bind("tasks.restore_task", Task, entity="deleted task")
_DELETE_MANY = _Q.bind("tasks.soft_delete_tasks", Task)
_RESTORE_MANY = _Q.bind("tasks.restore_tasks", Task, entity="deleted task")
_ASSIGN_MANY = _Q.bind("tasks.update_tasks_assignee", Task)
_DELETED_ACCESS = _Q.bind("tasks.get_deleted_task_access", DeletedTaskAccess)
_LOCK_PROJECT = _Q.bind("tasks.lock_project_for_new_tasks", uuid.UUID)
_LOCK_USERS = _Q.bind("tasks.count_active_users_locked", int)
_INSERT_MANY = _Q.bind("tasks.insert_tasks", Task)
# Why a write touched no row (the writes check access inside the statement).
_ACCESS = _Q.bind("tasks.get_task_access", TaskAccess)
_PROJECT_ACCESS = _Q.bind("projects.get_project_access", ProjectAccess)
_USER_ACTIVE = _Q.bind("tasks.get_user_is_active", bool)
_ALLOWED = _Q.bind("tasks.get_status_transition_allowed", bool)
_MATCHING = _Q.bind("tasks.list_tasks_matching", Task, lag_tolerant=True)
_MATCHING_COUNT = _Q.bind("tasks.count_tasks_matching", int, lag_tolerant=True)
_MATCHING_AFTER = _Q.bind("tasks.list_tasks_matching_after", Task, lag_tolerant=True)

MAX_BULK = 10_000
MAX_FILTER_IDS = 1000


def _title(value: str) -> str:
    return check_identifier("title", value, max_length=500)


def _description(value: str) -> str:
    return check_text("description", value, max_length=10_000)


def _priority(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
        raise ValidationError("priority must be an integer from 0 to 4", field="priority")
    return value


def check_status(value: str) -> str:
    """Return *value* if it is a known task status; raise ValidationError."""
    if not isinstance(value, str) or value not in TASK_STATUSES:
        raise ValidationError(f"status must be one of {sorted(TASK_STATUSES)}", field="status")
    return value


def _filters(project_ids: Sequence[uuid.UUID], where: TaskFilter | None) -> dict[str, object]:
    """Return the parameters of the tasks.*_matching queries, each checked."""
    projects = check_ids("project_ids", project_ids, max_count=MAX_FILTER_IDS)
    if not projects:
        raise ValidationError("project_ids must name at least one project", field="project_ids")
    f = TaskFilter() if where is None else check_input("where", where, TaskFilter)
    statuses = None
    if f.statuses is not None:
        if isinstance(f.statuses, str):
            raise ValidationError("statuses must be a list of statuses", field="statuses")
        statuses = sorted({check_status(s) for s in f.statuses})
    assignees = None
    if f.assignee_ids is not None:
        assignees = check_ids("assignee_ids", f.assignee_ids, max_count=MAX_FILTER_IDS)
    bounds: dict[str, object] = {}
    for name in ("priority_min", "priority_max"):
        value = getattr(f, name)
        bounds[name] = None if value is None else _priority(value)
    for name in ("created", "updated", "due"):
        low = check_instant(f"{name}_from", getattr(f, f"{name}_from"))
        high = check_instant(f"{name}_to", getattr(f, f"{name}_to"))
        if low is not None and high is not None and low > high:
            raise ValidationError(f"{name}_from must not be after {name}_to", field=f"{name}_from")
        bounds[f"{name}_from"], bounds[f"{name}_to"] = low, high
    return {"project_ids": projects, "statuses": statuses, "assignee_ids": assignees, **bounds}


def _by_created(task: Task) -> tuple[dt.datetime, uuid.UUID]:
    return (task.created_at, task.id)


def _after_created(position: tuple[Any, ...] | None) -> dict[str, object]:
    if position is None:
        return {"after_at": None, "after_id": None}
    return {"after_at": position[0], "after_id": position[1]}


class TaskRepository(Repository):
    """Read and write ``app.tasks`` on behalf of a user (``as_user``)."""

    __slots__ = ()

    async def create(
        self, project_id: uuid.UUID, new: NewTask, *, as_user: uuid.UUID, actor: str | None = None
    ) -> Task:
        """Create a task in a project *as_user* owns; the access check is in the insert itself.

        Raise NotFoundError (project not visible), PermissionDeniedError (not
        the owner, or archived), ValidationError (bad input, inactive assignee).
        """
        new = check_input("new", new, NewTask)
        created = await self.one_or_none(
            _INSERT,
            project_id=project_id,
            as_user=as_user,
            title=_title(new.title),
            description=_description(new.description),
            priority=_priority(new.priority),
            assignee_id=new.assignee_id,
            due_at=new.due_at,
            actor=self.actor(actor),
        )
        if created is None:
            await self._refuse_project(project_id, as_user, new.assignee_id)
        return created

    async def create_many(
        self,
        project_id: uuid.UUID,
        new: Sequence[NewTask],
        *,
        as_user: uuid.UUID,
        actor: str | None = None,
    ) -> list[Task]:
        """Create many tasks in one INSERT, with one audit event each, in one transaction.

        The project is share-locked and checked first, as for ``create``; all
        or nothing. Return the tasks in the order given.
        """
        who = self.actor(actor)
        new = [check_input("new", task, NewTask) for task in new]
        if len(new) > MAX_BULK:
            raise ValidationError(f"at most {MAX_BULK} tasks at once", field="tasks")
        # Rows of one batch share created_at (one transaction, one now()), so
        # listings, ordered by (created_at, id), fall back on the id: random
        # ids, sorted, keep the batch in the order given there too.
        ordered_ids = sorted(uuid.uuid4() for _ in new)
        if not new:
            return []
        columns = {
            "ids": ordered_ids,
            "titles": [_title(n.title) for n in new],
            "texts": [_description(n.description) for n in new],
            "priorities": [_priority(n.priority) for n in new],
            "assignees": [n.assignee_id for n in new],
            "dues": [n.due_at for n in new],
        }
        assignees = sorted({n.assignee_id for n in new if n.assignee_id is not None})
        async with self.executor.transaction() as tx:
            locked = await tx.fetchval(
                _LOCK_PROJECT,
                _LOCK_PROJECT.arguments((), {"project_id": project_id, "as_user": as_user}),
            )
            if locked is None:
                await self._refuse_project(project_id, as_user, None)
            if assignees:
                active = await tx.fetchval(
                    _LOCK_USERS, _LOCK_USERS.arguments((), {"ids": assignees})
                )
                if active != len(assignees):
                    raise ValidationError(
                        "every assignee must be an active user", field="assignee_id"
                    )
            rows = await tx.fetch(
                _INSERT_MANY,
                _INSERT_MANY.arguments(
                    (), {"project_id": project_id, "as_user": as_user, "actor": who, **columns}
                ),
            )
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
        patch = check_input("patch", patch, TaskPatch)
        unset = msgspec.UNSET
        updated = await self.one_or_none(
            _UPDATE,
            id=task_id,
            as_user=as_user,
            version=expected_version,
            title=None if patch.title is unset else _title(patch.title),
            description=None if patch.description is unset else _description(patch.description),
            priority=None if patch.priority is unset else _priority(patch.priority),
            set_due_at=patch.due_at is not unset,
            due_at=None if patch.due_at is unset else patch.due_at,
            actor=self.actor(actor),
        )
        if updated is None:
            await self._refuse(task_id, as_user, version=expected_version)
        return updated

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
        assigned = await self.one_or_none(
            _ASSIGN, id=task_id, as_user=as_user, assignee_id=assignee_id, actor=self.actor(actor)
        )
        if assigned is None:
            await self._refuse(task_id, as_user, owner_only=True, assignee_id=assignee_id)
        return assigned

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
        changed = await self.one_or_none(
            _STATUS,
            id=task_id,
            as_user=as_user,
            status=check_status(status),
            version=expected_version,
            actor=self.actor(actor),
        )
        if changed is None:
            await self._refuse(task_id, as_user, status=status, version=expected_version)
        return changed

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
        return await self.change_all(
            _STATUS_MANY,
            ids,
            partial(self._explain, as_user=as_user, status=status),
            as_user=as_user,
            status=check_status(status),
            actor=self.actor(actor),
        )

    async def soft_delete(
        self,
        task_id: uuid.UUID,
        *,
        as_user: uuid.UUID,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Task:
        """Soft-delete the task (project owner only, at *expected_version* if given).

        Return the deleted row. Raise NotFoundError, PermissionDeniedError
        (not the owner, or the project is archived), StaleVersionError.
        """
        deleted = await self.one_or_none(
            _DELETE,
            id=task_id,
            as_user=as_user,
            expected_version=check_version(expected_version),
            actor=self.actor(actor),
        )
        if deleted is None:
            await self._refuse(task_id, as_user, owner_only=True, version=expected_version)
        return deleted

    async def restore(
        self,
        task_id: uuid.UUID,
        *,
        as_user: uuid.UUID,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Task:
        """Undo the soft delete of the task (project owner only); return the restored row.

        Raise NotFoundError unless it is a soft-deleted task of a live project
        *as_user* owns, PermissionDeniedError if that project is archived,
        StaleVersionError when *expected_version* is given and the task has
        moved on.
        """
        restored = await self.one_or_none(
            _RESTORE,
            id=task_id,
            as_user=as_user,
            expected_version=check_version(expected_version),
            actor=self.actor(actor),
        )
        if restored is None:
            await self._explain_deleted(task_id, as_user)
            raise StaleVersionError("deleted task", task_id, expected_version=expected_version)
        return restored

    async def soft_delete_many(
        self, task_ids: Sequence[uuid.UUID], *, as_user: uuid.UUID, actor: str | None = None
    ) -> list[Task]:
        """Soft-delete every task in *task_ids* in one statement, all or nothing.

        Return the deleted rows by id. Raise as ``soft_delete`` for the first
        task that does not qualify (nothing is deleted then).
        """
        ids = check_ids("task_ids", task_ids, max_count=MAX_BULK)
        return await self.change_all(
            _DELETE_MANY,
            ids,
            partial(self._explain, as_user=as_user, owner_only=True),
            as_user=as_user,
            actor=self.actor(actor),
        )

    async def restore_many(
        self, task_ids: Sequence[uuid.UUID], *, as_user: uuid.UUID, actor: str | None = None
    ) -> list[Task]:
        """Restore every soft-deleted task in *task_ids* in one statement, all or nothing.

        Return the restored rows by id. Raise as ``restore`` for the first
        task that does not qualify (nothing is restored then).
        """
        ids = check_ids("task_ids", task_ids, max_count=MAX_BULK)
        return await self.change_all(
            _RESTORE_MANY,
            ids,
            partial(self._explain_deleted, as_user=as_user),
            as_user=as_user,
            actor=self.actor(actor),
        )

    async def assign_many(
        self,
        task_ids: Sequence[uuid.UUID],
        assignee_id: uuid.UUID | None,
        *,
        as_user: uuid.UUID,
        actor: str | None = None,
    ) -> list[Task]:
        """Assign every task in *task_ids* to *assignee_id* (None: unassign), all or nothing.

        Project owner only, as ``assign``; return the changed rows by id.
        Raise ValidationError if the assignee is not an active user, else as
        ``assign`` for the first task that does not qualify.
        """
        ids = check_ids("task_ids", task_ids, max_count=MAX_BULK)
        if assignee_id is not None and not isinstance(assignee_id, uuid.UUID):
            raise ValidationError("assignee_id must be a UUID or None", field="assignee_id")

        async def blame(task_id: uuid.UUID) -> None:
            await self._check_assignee(assignee_id)
            await self._explain(task_id, as_user, owner_only=True)

        return await self.change_all(
            _ASSIGN_MANY,
            ids,
            blame,
            as_user=as_user,
            assignee_id=assignee_id,
            actor=self.actor(actor),
        )

    # -- reads ---------------------------------------------------------------

    async def get(self, task_id: uuid.UUID, *, as_user: uuid.UUID) -> Task:
        """Return the task if *as_user* may see it; raise NotFoundError otherwise."""
        return await self.one(_GET, id=task_id, as_user=as_user)

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
        self, q: Query[Task], cursor: str | None, limit: int, status: str | None, **filters: object
    ) -> Slice[Task]:
        status = None if status is None else check_status(status)
        return await self.keyset_page(
            q, cursor, limit, _by_created, _after_created, status=status, **filters
        )

    async def find(
        self,
        project_ids: Sequence[uuid.UUID],
        where: TaskFilter | None = None,
        *,
        as_user: uuid.UUID,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[Task]:
        """Return one offset page (oldest first) of the tasks of *project_ids* matching *where*.

        Only tasks *as_user* may see are listed and counted. Raise
        ValidationError for a bad filter (an unknown status, a naive
        datetime, a range whose start is after its end, no project).
        """
        filters = _filters(project_ids, where)
        return await self.offset_page(
            _MATCHING, _MATCHING_COUNT, offset, limit, as_user=as_user, **filters
        )

    async def find_after(
        self,
        project_ids: Sequence[uuid.UUID],
        where: TaskFilter | None = None,
        *,
        as_user: uuid.UUID,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Slice[Task]:
        """Return one keyset page of the tasks ``find`` lists; pass ``next_cursor`` on."""
        filters = _filters(project_ids, where)
        return await self.keyset_page(
            _MATCHING_AFTER, cursor, limit, _by_created, _after_created, as_user=as_user, **filters
        )

    async def overdue(
        self, *, as_user: uuid.UUID, project_id: uuid.UUID | None = None, limit: int = 100
    ) -> list[Task]:
        """Return open tasks *as_user* may see whose due time has passed, most overdue first."""
        _, limit = self.page_bounds(0, limit)
        return await self.many(_OVERDUE, as_user=as_user, project_id=project_id, page_size=limit)

    async def due_soon(
        self,
        *,
        as_user: uuid.UUID,
        within: dt.timedelta = dt.timedelta(days=1),
        project_id: uuid.UUID | None = None,
        limit: int = 100,
    ) -> list[Task]:
        """Return open tasks *as_user* may see due from now to now + *within*, soonest first."""
        _, limit = self.page_bounds(0, limit)
        return await self.many(
            _DUE_SOON, as_user=as_user, within=within, project_id=project_id, page_size=limit
        )

    # -- why a write touched no row ------------------------------------------

    async def _refuse_project(
        self, project_id: uuid.UUID, as_user: uuid.UUID, assignee_id: uuid.UUID | None
    ) -> NoReturn:
        """Raise why a task could not be created in *project_id*."""
        access = await self.one_or_none(_PROJECT_ACCESS, id=project_id, as_user=as_user)
        if access is None or not access.visible:
            raise NotFoundError("project", project_id)
        if not access.is_owner:
            raise PermissionDeniedError("only the project owner may add tasks")
        if access.archived:
            raise PermissionDeniedError("the project is archived; unarchive it first")
        await self._check_assignee(assignee_id)
        raise StaleVersionError("project", project_id)  # it changed under us; try again

    async def _explain_deleted(self, task_id: uuid.UUID, as_user: uuid.UUID) -> None:
        """Raise why *task_id* cannot be restored; return if nothing refuses it now."""
        access = await self.one_or_none(_DELETED_ACCESS, id=task_id, as_user=as_user)
        if access is None or not access.is_owner:
            raise NotFoundError("deleted task", task_id)
        if access.archived:
            raise PermissionDeniedError("the project is archived; unarchive it first")

    async def _check_assignee(self, assignee_id: uuid.UUID | None) -> None:
        if assignee_id is not None and not await self.value(_USER_ACTIVE, id=assignee_id):
            raise ValidationError("the assignee must be an active user", field="assignee_id")

    async def _explain(
        self,
        task_id: uuid.UUID,
        as_user: uuid.UUID,
        *,
        owner_only: bool = False,
        status: str | None = None,
        assignee_id: uuid.UUID | None = None,
    ) -> None:
        """Raise why a write to *task_id* was refused; return if nothing refuses it now."""
        access = await self.one_or_none(_ACCESS, id=task_id, as_user=as_user)
        if access is None or not access.visible:
            raise NotFoundError("task", task_id)
        if not (access.is_owner if owner_only else access.can_write):
            who = "the project owner" if owner_only else "the project owner or the assignee"
            raise PermissionDeniedError(f"only {who} may change this task")
        if access.archived:
            raise PermissionDeniedError("the project is archived; unarchive it first")
        current = access.status
        if status is not None and not await self.value(
            _ALLOWED, from_status=current, to_status=status
        ):
            raise ValidationError(f"a task cannot move from {current} to {status}", field="status")
        await self._check_assignee(assignee_id)

    async def _refuse(
        self,
        task_id: uuid.UUID,
        as_user: uuid.UUID,
        *,
        owner_only: bool = False,
        status: str | None = None,
        version: int | None = None,
        assignee_id: uuid.UUID | None = None,
    ) -> NoReturn:
        """Raise why a write to *task_id* touched no row: StaleVersionError if nothing else."""
        await self._explain(
            task_id,
            as_user,
            owner_only=owner_only,
            status=status,
            assignee_id=assignee_id,
        )
        raise StaleVersionError("task", task_id, expected_version=version)
