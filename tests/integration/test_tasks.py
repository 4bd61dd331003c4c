"""TaskRepository on a real PostgreSQL: access matrix, transitions, listings, bulk writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import asyncpg
import pytest

from tests.integration._users import cheap_settings
from tests.integration._work import STATES, events, make_users
from vdata.errors import NotFoundError, PermissionDeniedError, StaleVersionError, ValidationError
from vdata.models.projects import NewProject
from vdata.models.tasks import TASK_STATUSES, NewTask, TaskPatch

pytestmark = pytest.mark.integration

READS = ("get", "list")
WRITES = ("create", "update", "status", "assign", "delete")
ACTIONS = {
    "create": "task.create",
    "update": "task.update",
    "status": "task.status",
    "assign": "task.assign",
    "delete": "task.soft_delete",
}
# The documented rules (migrations/0302, docs/usage/tasks.md), written out again.
ALLOWED = {
    ("todo", "in_progress"), ("todo", "blocked"), ("todo", "done"), ("todo", "cancelled"),
    ("in_progress", "todo"), ("in_progress", "blocked"), ("in_progress", "done"),
    ("in_progress", "cancelled"), ("blocked", "todo"), ("blocked", "in_progress"),
    ("blocked", "cancelled"), ("done", "todo"), ("done", "in_progress"), ("cancelled", "todo"),
}  # fmt: skip


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: these tests create users, they do not measure hashing."""
    return cheap_settings()


def expected(op: str, state: str, who: str) -> type[Exception] | None:
    """The outcome the access rules promise for *who* (owner, assignee, other)."""
    public, archived = state.endswith("public"), state.startswith("archived")
    if op == "create":  # a project-level write: the project must be visible and owned
        if state == "deleted" or (who != "owner" and not public):
            return NotFoundError
        return PermissionDeniedError if who != "owner" or archived else None
    if state in ("deleted", "task_deleted") or (who == "other" and not public):
        return NotFoundError
    if op in READS:
        return None
    if who == "other" or (op in ("assign", "delete") and who != "owner"):
        return PermissionDeniedError
    return PermissionDeniedError if archived else None


async def run(db: Any, op: str, task: Any, user: uuid.UUID, who: str, ids: Any) -> object:
    """Perform *op* on *task* (or its project, for create) as *user*."""
    if op == "get":
        return await db.tasks.get(task.id, as_user=user)
    if op == "list":
        lists = [
            await db.tasks.list_by_project(task.project_id, as_user=user),
            await db.tasks.list_by_assignee(ids["ana"], as_user=user),
            await db.tasks.list_by_status("todo", as_user=user),
        ]
        seen = [task.id in {t.id for t in part.items} for part in lists]
        assert len(set(seen)) == 1  # the three listings agree on visibility
        if not seen[0]:
            raise NotFoundError("task", task.id)
        return lists
    if op == "create":
        return await db.tasks.create(task.project_id, NewTask(title="new"), as_user=user, actor=who)
    if op == "update":
        patch = TaskPatch(title="changed")
        return await db.tasks.update(
            task.id, patch, expected_version=task.version, as_user=user, actor=who
        )
    if op == "status":
        return await db.tasks.set_status(task.id, "in_progress", as_user=user, actor=who)
    if op == "assign":
        return await db.tasks.assign(task.id, ids["olga"], as_user=user, actor=who)
    assert op == "delete"
    return await db.tasks.soft_delete(task.id, as_user=user, actor=who)


async def task_in_state(db: Any, ids: Any, state: str, name: str) -> Any:
    """Create a task assigned to ana in a project of olga's brought to *state*."""
    olga = ids["olga"]
    base = "private" if state == "task_deleted" else state
    project = await db.projects.create(
        NewProject(name=name, is_public=base.endswith("public")), owner_id=olga, actor="olga"
    )
    task = await db.tasks.create(
        project.id, NewTask(title=name, assignee_id=ids["ana"]), as_user=olga, actor="olga"
    )
    if state == "task_deleted":
        task = await db.tasks.soft_delete(task.id, as_user=olga, actor="olga")
    elif base != "private" and base != "public":
        await project_in_state_step(db, project.id, olga, base)
    return task


async def project_in_state_step(db: Any, pid: uuid.UUID, olga: uuid.UUID, state: str) -> None:
    if state.startswith("archived"):
        await db.projects.archive(pid, as_user=olga, actor="olga")
    else:
        await db.projects.soft_delete(pid, as_user=olga, actor="olga")


async def raw_task(owner: asyncpg.Connection, tid: uuid.UUID) -> tuple[Any, ...]:
    row = await owner.fetchrow("SELECT * FROM app.tasks WHERE id = $1", tid)
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("op", READS + WRITES)
async def test_access_matrix(vdata_db: Any, vdata_dsn: str, op: str) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "ana", "oscar")
    people = {"owner": ids["olga"], "assignee": ids["ana"], "other": ids["oscar"]}
    owner = await asyncpg.connect(vdata_dsn)
    try:
        for state in (*STATES, "task_deleted"):
            for who, user in people.items():
                task = await task_in_state(db, ids, state, f"{op}-{state}-{who}")
                before_events = await events(db, "task", task.id)
                before_row = await raw_task(owner, task.id)
                created = await db.audit.search(action="task.create", actor=who)
                outcome = expected(op, state, who)
                if outcome is not None:
                    with pytest.raises(outcome):
                        await run(db, op, task, user, who, ids)
                    assert await raw_task(owner, task.id) == before_row, (state, who)
                    assert await events(db, "task", task.id) == before_events
                    assert await db.audit.search(action="task.create", actor=who) == created
                    continue
                result = await run(db, op, task, user, who, ids)
                if op == "create":
                    [event] = await events(db, "task", result.id)  # type: ignore[attr-defined]
                    assert (event.actor, event.action) == (who, "task.create")
                    continue
                new = (await events(db, "task", task.id))[len(before_events) :]
                if op in READS:
                    assert new == []
                    continue
                assert [(e.actor, e.action) for e in new] == [(who, ACTIONS[op])], (state, who)
                assert new[0].before is not None and new[0].after is not None
    finally:
        await owner.close()


async def test_status_transitions_follow_the_rules(vdata_db: Any, vdata_dsn: str) -> None:
    db = vdata_db
    ids = await make_users(db, "olga")
    olga = ids["olga"]
    project = await db.projects.create(NewProject(name="flow"), owner_id=olga, actor="olga")
    owner = await asyncpg.connect(vdata_dsn)
    try:
        for start in sorted(TASK_STATUSES):
            for target in sorted(TASK_STATUSES):
                task = await db.tasks.create(
                    project.id, NewTask(title=f"{start}->{target}"), as_user=olga, actor="olga"
                )
                if start != "todo":
                    path = ["in_progress"] if start == "in_progress" else [start]
                    for step in path:
                        task = await db.tasks.set_status(task.id, step, as_user=olga, actor="o")
                before = await raw_task(owner, task.id)
                history = await events(db, "task", task.id)
                if (start, target) in ALLOWED:
                    moved = await db.tasks.set_status(task.id, target, as_user=olga, actor="o")
                    assert moved.status == target and moved.version == task.version + 1
                    assert (moved.completed_at is not None) == (target == "done")
                    assert len(await events(db, "task", task.id)) == len(history) + 1
                else:
                    with pytest.raises(ValidationError) as caught:
                        await db.tasks.set_status(task.id, target, as_user=olga, actor="o")
                    assert caught.value.message.startswith(f"a task cannot move from {start}")
                    assert await raw_task(owner, task.id) == before
                    assert await events(db, "task", task.id) == history
    finally:
        await owner.close()
    done = await db.tasks.list_by_status("done", as_user=olga)
    reopened = await db.tasks.set_status(done.items[0].id, "todo", as_user=olga, actor="olga")
    assert reopened.completed_at is None
    with pytest.raises(ValidationError):
        await db.tasks.set_status(reopened.id, "finished", as_user=olga, actor="olga")
    with pytest.raises(StaleVersionError):
        await db.tasks.set_status(
            reopened.id, "blocked", as_user=olga, expected_version=1, actor="olga"
        )


async def test_assign_needs_an_active_user(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "ana", "ivan")
    olga = ids["olga"]
    await db.users.deactivate(ids["ivan"], actor="admin")
    project = await db.projects.create(NewProject(name="p"), owner_id=olga, actor="olga")
    task = await db.tasks.create(project.id, NewTask(title="t"), as_user=olga, actor="olga")
    for nobody in (ids["ivan"], uuid.uuid4()):
        with pytest.raises(ValidationError):
            await db.tasks.assign(task.id, nobody, as_user=olga, actor="olga")
        with pytest.raises(ValidationError):
            await db.tasks.create(
                project.id, NewTask(title="x", assignee_id=nobody), as_user=olga, actor="olga"
            )
    assigned = await db.tasks.assign(task.id, ids["ana"], as_user=olga, actor="olga")
    assert assigned.assignee_id == ids["ana"]
    mine = await db.tasks.list_by_assignee(ids["ana"], as_user=ids["ana"])
    assert [t.id for t in mine.items] == [task.id]  # the assignee sees a private task
    unassigned = await db.tasks.assign(task.id, None, as_user=olga, actor="olga")
    assert unassigned.assignee_id is None
    with pytest.raises(NotFoundError):
        await db.tasks.get(task.id, as_user=ids["ana"])
    actions = [e.action for e in await events(db, "task", task.id)]
    assert actions == ["task.create", "task.assign", "task.assign"]


async def test_update_is_versioned_and_clears_due_at(vdata_db: Any) -> None:
    db = vdata_db
    olga = (await make_users(db, "olga"))["olga"]
    project = await db.projects.create(NewProject(name="p"), owner_id=olga, actor="olga")
    due = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    task = await db.tasks.create(
        project.id, NewTask(title="t", due_at=due, priority=1), as_user=olga, actor="olga"
    )
    kept = await db.tasks.update(
        task.id, TaskPatch(title="u"), expected_version=1, as_user=olga, actor="olga"
    )
    assert (kept.title, kept.due_at, kept.priority, kept.version) == ("u", due, 1, 2)
    cleared = await db.tasks.update(
        task.id, TaskPatch(due_at=None, priority=4), expected_version=2, as_user=olga, actor="o"
    )
    assert (cleared.due_at, cleared.priority) == (None, 4)
    with pytest.raises(StaleVersionError):
        await db.tasks.update(
            task.id, TaskPatch(title="v"), expected_version=2, as_user=olga, actor="olga"
        )
    for bad in (TaskPatch(priority=5), TaskPatch(title="a\x00"), TaskPatch(title="")):
        with pytest.raises(ValidationError):
            await db.tasks.update(task.id, bad, expected_version=3, as_user=olga, actor="olga")
    assert (await db.tasks.get(task.id, as_user=olga)).version == 3


async def test_listings_overdue_and_due_soon(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "ana")
    olga = ids["olga"]
    project = await db.projects.create(NewProject(name="p"), owner_id=olga, actor="olga")
    now = dt.datetime.now(dt.UTC)
    dues: list[dt.datetime | None] = [now - dt.timedelta(days=2), now - dt.timedelta(hours=1)]
    dues += [now + dt.timedelta(hours=2), now + dt.timedelta(days=3), None]
    tasks = [
        await db.tasks.create(project.id, NewTask(title=f"t{n}", due_at=d), as_user=olga, actor="o")
        for n, d in enumerate(dues)
    ]
    await db.tasks.set_status(tasks[1].id, "done", as_user=olga, actor="olga")
    overdue = await db.tasks.overdue(as_user=olga)
    assert [t.id for t in overdue] == [tasks[0].id]  # done tasks are not overdue
    soon = await db.tasks.due_soon(as_user=olga, within=dt.timedelta(days=1))
    assert [t.id for t in soon] == [tasks[2].id]
    assert await db.tasks.overdue(as_user=ids["ana"]) == []  # private project
    seen = []
    cursor = None
    while True:
        part = await db.tasks.list_by_project(project.id, as_user=olga, cursor=cursor, limit=2)
        seen += [t.id for t in part.items]
        if (cursor := part.next_cursor) is None:
            break
    assert seen == [t.id for t in tasks]
    todo = await db.tasks.list_by_project(project.id, as_user=olga, status="todo")
    assert len(todo.items) == 4


async def test_bulk_status_is_all_or_nothing(vdata_db: Any, vdata_dsn: str) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar")
    olga = ids["olga"]
    project = await db.projects.create(NewProject(name="p"), owner_id=olga, actor="olga")
    tasks = [
        await db.tasks.create(project.id, NewTask(title=f"t{n}"), as_user=olga, actor="olga")
        for n in range(5)
    ]
    await db.tasks.set_status(tasks[0].id, "cancelled", as_user=olga, actor="olga")
    task_ids = [t.id for t in tasks]
    with pytest.raises(ValidationError):  # cancelled -> done is not allowed
        await db.tasks.set_status_many(task_ids, "done", as_user=olga, actor="olga")
    with pytest.raises(NotFoundError):
        await db.tasks.set_status_many(
            [*task_ids[1:], uuid.uuid4()], "done", as_user=olga, actor="o"
        )
    with pytest.raises(NotFoundError):  # oscar cannot see olga's private project
        await db.tasks.set_status_many(task_ids[1:], "done", as_user=ids["oscar"], actor="x")
    statuses = [(await db.tasks.get(i, as_user=olga)).status for i in task_ids]
    assert statuses == ["cancelled", "todo", "todo", "todo", "todo"]
    moved = await db.tasks.set_status_many(
        [*task_ids[1:], task_ids[1]], "done", as_user=olga, actor="bulk"
    )
    assert {t.id for t in moved} == set(task_ids[1:])
    assert all(t.status == "done" and t.completed_at is not None for t in moved)
    for task_id in task_ids[1:]:
        assert [(e.actor, e.action) for e in (await events(db, "task", task_id))[-1:]] == [
            ("bulk", "task.status")
        ]
    assert await db.tasks.set_status_many([], "done", as_user=olga, actor="bulk") == []


async def test_bulk_create_through_copy(vdata_db: Any, vdata_dsn: str) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "ana", "oscar")
    olga = ids["olga"]
    project = await db.projects.create(NewProject(name="p"), owner_id=olga, actor="olga")
    new = [
        NewTask(title=f"bulk {n}", assignee_id=ids["ana"] if n % 2 else None) for n in range(500)
    ]
    created = await db.tasks.create_many(project.id, new, as_user=olga, actor="importer")
    assert [t.title for t in created] == [n.title for n in new]
    assert all(t.version == 1 and t.created_by == "importer" for t in created)
    logged = await db.audit.search(action="task.create", actor="importer", limit=1000)
    assert {e.entity_id for e in logged.items} == {str(t.id) for t in created}
    bad = [NewTask(title="ok"), NewTask(title="x", assignee_id=uuid.uuid4())]
    with pytest.raises(ValidationError):
        await db.tasks.create_many(project.id, bad, as_user=olga, actor="importer2")
    with pytest.raises(NotFoundError):
        await db.tasks.create_many(project.id, new[:2], as_user=ids["oscar"], actor="importer2")
    # A failure inside the transaction rolls back the COPY and its audit events.
    with pytest.raises(ValidationError):
        async with db.transaction(actor="importer2") as tx:
            await tx.tasks.create_many(project.id, new[:3], as_user=olga)
            raise ValidationError("abort")
    assert (await db.audit.search(actor="importer2")).items == []
    page = await db.tasks.list_by_project(project.id, as_user=olga, limit=1000)
    assert len(page.items) == 500
    await db.projects.archive(project.id, as_user=olga, actor="olga")
    with pytest.raises(PermissionDeniedError):
        await db.tasks.create_many(project.id, new[:2], as_user=olga, actor="importer2")


async def test_create_waits_for_a_concurrent_archive(vdata_db: Any, vdata_dsn: str) -> None:
    db = vdata_db
    olga = (await make_users(db, "olga"))["olga"]
    project = await db.projects.create(NewProject(name="race"), owner_id=olga, actor="olga")
    owner = await asyncpg.connect(vdata_dsn)
    try:
        tx = owner.transaction()
        await tx.start()
        await owner.execute(
            "UPDATE app.projects SET archived_at = now(), updated_by = 'x' WHERE id = $1",
            project.id,
        )
        create = asyncio.ensure_future(
            db.tasks.create(project.id, NewTask(title="late"), as_user=olga, actor="olga")
        )
        await asyncio.sleep(0.3)
        assert not create.done()  # blocked on the project's row lock, not racing past it
        await tx.commit()
        with pytest.raises(PermissionDeniedError):
            await create
    finally:
        await owner.close()
    assert (await db.tasks.list_by_project(project.id, as_user=olga)).items == []
