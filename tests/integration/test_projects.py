"""ProjectRepository on a real PostgreSQL: access matrix, audit events, listings, stats."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.integration._users import cheap_settings
from tests.integration._work import STATES, events, make_users, project_in_state
from vdata.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    StaleVersionError,
    ValidationError,
)
from vdata.models.projects import NewProject, ProjectPatch
from vdata.models.tasks import NewTask

pytestmark = pytest.mark.integration

READS = ("get", "stats", "list")
WRITES = ("update", "archive", "unarchive", "delete")
ACTIONS = {
    "update": "project.update",
    "archive": "project.archive",
    "unarchive": "project.unarchive",
    "delete": "project.soft_delete",
}


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: these tests create users, they do not measure hashing."""
    return cheap_settings()


def expected(op: str, state: str, who: str) -> type[Exception] | None:
    """The outcome the access rules promise: None for success, else the error class."""
    if state == "deleted":
        return NotFoundError  # gone for everyone
    public, archived = state.endswith("public"), state.startswith("archived")
    if who == "other" and not public:
        return NotFoundError  # a private project's existence does not leak
    if op in READS:
        return None
    if who == "other":
        return PermissionDeniedError  # visible, but only the owner may write
    if op == "update" and archived:
        return PermissionDeniedError  # read-only until unarchived
    if op == "archive" and archived:
        return PermissionDeniedError
    if op == "unarchive" and not archived:
        return PermissionDeniedError
    return None


async def run(db: Any, op: str, project: Any, user: uuid.UUID, actor: str) -> object:
    """Perform *op* on *project* as *user*."""
    pid = project.id
    if op == "get":
        return await db.projects.get(pid, as_user=user)
    if op == "stats":
        return await db.projects.stats(pid, as_user=user)
    if op == "list":
        page = await db.projects.list_visible(as_user=user, limit=1000)
        keyset = await db.projects.list_visible_after(as_user=user, limit=1000)
        assert [p.id for p in page.items] == [p.id for p in keyset.items]
        if pid not in {p.id for p in page.items}:
            raise NotFoundError("project", pid)
        return page
    if op == "update":
        patch = ProjectPatch(description="changed")
        return await db.projects.update(
            pid, patch, expected_version=project.version, as_user=user, actor=actor
        )
    if op == "archive":
        return await db.projects.archive(pid, as_user=user, actor=actor)
    if op == "unarchive":
        return await db.projects.unarchive(pid, as_user=user, actor=actor)
    assert op == "delete"
    return await db.projects.soft_delete(pid, as_user=user, actor=actor)


async def raw_state(owner: asyncpg.Connection, pid: uuid.UUID) -> tuple[Any, ...]:
    row = await owner.fetchrow(
        "SELECT version, description, archived_at, deleted_at FROM app.projects WHERE id = $1",
        pid,
    )
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("op", READS + WRITES)
async def test_access_matrix(vdata_db: Any, vdata_dsn: str, op: str) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar")
    owner = await asyncpg.connect(vdata_dsn)
    try:
        for state in STATES:
            for who, user in (("owner", ids["olga"]), ("other", ids["oscar"])):
                project = await project_in_state(db, ids["olga"], state, f"{op}-{state}-{who}")
                before_events = await events(db, "project", project.id)
                before_row = await raw_state(owner, project.id)
                outcome = expected(op, state, who)
                if outcome is not None:
                    with pytest.raises(outcome):
                        await run(db, op, project, user, who)
                    assert await raw_state(owner, project.id) == before_row, (state, who)
                    assert await events(db, "project", project.id) == before_events
                    continue
                await run(db, op, project, user, who)
                after_events = await events(db, "project", project.id)
                if op in READS:
                    assert after_events == before_events
                    continue
                new = after_events[len(before_events) :]
                assert [(e.actor, e.action) for e in new] == [(who, ACTIONS[op])], (state, who)
                assert new[0].before is not None and new[0].after is not None
                assert json.loads(new[0].before)["version"] == before_row[0]
                assert json.loads(new[0].after)["version"] == before_row[0] + 1
    finally:
        await owner.close()


async def test_create_records_one_event_and_rejects_duplicates(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga")
    project = await db.projects.create(
        NewProject(name="Apollo", description="moon"), owner_id=ids["olga"], actor="olga"
    )
    assert (project.owner_id, project.name, project.version) == (ids["olga"], "Apollo", 1)
    assert project.created_by == project.updated_by == "olga"
    [event] = await events(db, "project", project.id)
    assert (event.actor, event.action, event.before) == ("olga", "project.create", None)
    assert json.loads(event.after or "{}")["name"] == "Apollo"
    with pytest.raises(ConflictError) as caught:
        await db.projects.create(NewProject(name="Apollo"), owner_id=ids["olga"], actor="olga")
    assert caught.value.constraint == "unique_projects_owner_id_and_name"
    await db.projects.soft_delete(project.id, as_user=ids["olga"], actor="olga")
    again = await db.projects.create(NewProject(name="Apollo"), owner_id=ids["olga"], actor="olga")
    assert again.id != project.id  # a deleted project frees its name


async def test_create_validates_and_needs_an_active_owner(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga")
    for bad in ("", "a\x00b", "x" * 201, " padded"):
        with pytest.raises(ValidationError):
            await db.projects.create(NewProject(name=bad), owner_id=ids["olga"], actor="olga")
    with pytest.raises(ValidationError):
        await db.projects.create(NewProject(name="ok"), owner_id=ids["olga"])  # no actor
    with pytest.raises(NotFoundError):
        await db.projects.create(NewProject(name="ok"), owner_id=uuid.uuid4(), actor="olga")
    await db.users.deactivate(ids["olga"], actor="admin")
    with pytest.raises(NotFoundError):
        await db.projects.create(NewProject(name="ok"), owner_id=ids["olga"], actor="olga")
    listed = await db.projects.list_visible(as_user=ids["olga"])
    assert listed.total == 0


async def test_update_is_versioned(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga")
    p = await db.projects.create(NewProject(name="v"), owner_id=ids["olga"], actor="olga")
    p2 = await db.projects.update(
        p.id, ProjectPatch(name="w", is_public=True), expected_version=1, as_user=ids["olga"],
        actor="olga",
    )  # fmt: skip
    assert (p2.name, p2.is_public, p2.description, p2.version) == ("w", True, "", 2)
    with pytest.raises(StaleVersionError):
        await db.projects.update(
            p.id, ProjectPatch(name="x"), expected_version=1, as_user=ids["olga"], actor="olga"
        )
    assert (await db.projects.get(p.id, as_user=ids["olga"])).name == "w"
    assert len(await events(db, "project", p.id)) == 2


async def test_list_search_and_both_paginations(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar")
    olga, oscar = ids["olga"], ids["oscar"]
    for n in range(7):
        await db.projects.create(NewProject(name=f"olga-{n}"), owner_id=olga, actor="olga")
    for n in range(3):
        await db.projects.create(
            NewProject(name=f"Shared-{n}", is_public=True), owner_id=oscar, actor="oscar"
        )
    for n in range(2):
        await db.projects.create(NewProject(name=f"secret-{n}"), owner_id=oscar, actor="oscar")
    everything = await db.projects.list_visible(as_user=olga, limit=3)
    assert (everything.total, len(everything.items)) == (10, 3)
    names = []
    for offset in range(0, 10, 3):
        page = await db.projects.list_visible(as_user=olga, offset=offset, limit=3)
        names += [p.name for p in page.items]
    assert names == sorted(names) and len(names) == 10 and not any("secret" in n for n in names)
    keyset_names: list[str] = []
    cursor = None
    while True:
        part = await db.projects.list_visible_after(as_user=olga, cursor=cursor, limit=4)
        keyset_names += [p.name for p in part.items]
        cursor = part.next_cursor
        if cursor is None:
            break
    assert keyset_names == names
    found = await db.projects.list_visible(as_user=olga, search="SHARED")
    assert [p.name for p in found.items] == ["Shared-0", "Shared-1", "Shared-2"]
    mine = await db.projects.list_visible(as_user=olga, owned_only=True)
    assert mine.total == 7
    first = await db.projects.list_visible_after(as_user=olga, limit=2)
    assert first.next_cursor is not None
    tampered = first.next_cursor[:-2] + ("A" if first.next_cursor[-2] != "A" else "B") + "A"
    with pytest.raises(ValidationError):
        await db.projects.list_visible_after(as_user=olga, cursor=tampered)
    await db.projects.archive(found.items[0].id, as_user=oscar, actor="oscar")
    live = await db.projects.list_visible(as_user=olga, include_archived=False)
    assert live.total == 9


async def test_stats_in_one_query(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga")
    olga = ids["olga"]
    p = await db.projects.create(NewProject(name="stats"), owner_id=olga, actor="olga")
    empty = await db.projects.stats(p.id, as_user=olga)
    assert (empty.total, empty.completion_rate, empty.overdue) == (0, 0.0, 0)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    tasks = [
        await db.tasks.create(p.id, NewTask(title=f"t{n}", due_at=past), as_user=olga, actor="o")
        for n in range(6)
    ]
    for task, status in zip(
        tasks, ["done", "done", "cancelled", "blocked", "in_progress", "todo"], strict=True
    ):
        if status == "todo":
            continue
        await db.tasks.set_status(task.id, status, as_user=olga, actor="olga")
    await db.tasks.soft_delete(tasks[0].id, as_user=olga, actor="olga")  # not counted
    stats = await db.projects.stats(p.id, as_user=olga)
    assert (stats.total, stats.todo, stats.in_progress, stats.blocked) == (5, 1, 1, 1)
    assert (stats.done, stats.cancelled) == (1, 1)
    assert stats.completion_rate == pytest.approx(1 / 4)
    assert stats.overdue == 3  # todo, in_progress, blocked are open and past due
