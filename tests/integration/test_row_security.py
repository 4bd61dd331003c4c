"""Row-level security on projects and tasks (migrations/0330): the policies alone refuse.

The access matrix of test_projects / test_tasks runs again through test-only
queries (tests/sql/rls) that keep the state rules (deleted, archived) but drop
every predicate on the user, as the service role: the outcome must be the same,
so it is the policies that refuse. Raw SQL as the service role with no user set
sees no private row, and the acting user never outlives its transaction on a
pool of one connection.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from tests.integration._probe import QUERIES
from tests.integration._users import cheap_settings
from tests.integration._work import STATES, make_users, project_in_state
from tests.integration.test_projects import expected as project_expected
from tests.integration.test_tasks import expected as task_expected
from tests.integration.test_tasks import task_in_state
from vdata.errors import NotFoundError, PermissionDeniedError
from vdata.models.projects import NewProject, Project
from vdata.models.tasks import NewTask
from vdata.queries import Query

pytestmark = pytest.mark.integration


def rls(name: str) -> Query[Any]:
    """Return the test-only query *name* (tests/sql/rls/rls.sql)."""
    return QUERIES[f"rls.{name}"]


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2; one connection, so that every call reuses the same backend."""
    return cheap_settings(pool_min_size=1, pool_max_size=1)


async def allowed(db: Any, name: str, **params: object) -> bool:
    """Run the test-only query *name*; True if it returned a row, False if refused."""
    q = rls(name)
    try:
        return await db.fetchval(q, q.arguments((), params)) is not None
    except PermissionDeniedError:  # a policy's WITH CHECK: 42501
        return False


@pytest.mark.parametrize("op", ["get", "update"])
async def test_project_policies_alone_give_the_access_matrix(
    vdata_db: Any, vdata_dsn: str, op: str
) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar")
    owner = await asyncpg.connect(vdata_dsn)
    try:
        for state in STATES:
            for who, user in (("owner", ids["olga"]), ("other", ids["oscar"])):
                project = await project_in_state(db, ids["olga"], state, f"{op}-{state}-{who}")
                want = project_expected(op, state, who) is None
                got = await allowed(db, f"{op}_project", id=project.id, as_user=user)
                assert got == want, (op, state, who)
        # Control: the same query as the owner (no row security) lets oscar
        # see olga's private project: nothing in the query itself refuses.
        private = await project_in_state(db, ids["olga"], "private", "control")
        q = rls("get_project")
        assert await owner.fetchval(q.sql, private.id, ids["oscar"]) == private.id
    finally:
        await owner.close()


@pytest.mark.parametrize("op", ["get", "create", "update", "assign", "delete"])
async def test_task_policies_alone_give_the_access_matrix(
    vdata_db: Any, vdata_dsn: str, op: str
) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "ana", "oscar")
    people = {"owner": ids["olga"], "assignee": ids["ana"], "other": ids["oscar"]}
    owner = await asyncpg.connect(vdata_dsn)
    try:
        for state in (*STATES, "task_deleted"):
            for who, user in people.items():
                task = await task_in_state(db, ids, state, f"{op}-{state}-{who}")
                want = task_expected(op, state, who) is None
                if op == "get":
                    got = await allowed(db, "get_task", id=task.id, as_user=user)
                elif op == "create":
                    got = await allowed(db, "insert_task", project_id=task.project_id, as_user=user)
                else:
                    got = await allowed(db, "update_task", id=task.id, as_user=user, op=op)
                assert got == want, (op, state, who)
        # Control: as the owner (no row security) oscar's query reaches olga's
        # private task.
        task = await task_in_state(db, ids, "private", "control")
        q = rls("get_task")
        assert await owner.fetchval(q.sql, task.id, ids["oscar"]) == task.id
    finally:
        await owner.close()


async def test_soft_deleted_rows_are_the_project_owners_alone_under_the_policies(
    vdata_db: Any,
) -> None:
    """Only the owner sees and restores a soft-deleted task or project (migration 0341).

    ana is the assignee of both tasks, and keeps a live one in the project,
    so the projects policy lets her see it while it is live; oscar sees the
    public one. Neither sees nor restores what olga deleted.
    """
    db = vdata_db
    ids = await make_users(db, "olga", "ana", "oscar")
    olga, ana, oscar = ids["olga"], ids["ana"], ids["oscar"]
    for public in (False, True):
        project = await db.projects.create(
            NewProject(name=f"lifecycle {public}", is_public=public), owner_id=olga, actor="olga"
        )
        for title in ("live", "gone"):
            task = await db.tasks.create(
                project.id, NewTask(title=title, assignee_id=ana), as_user=olga, actor="olga"
            )
        await db.tasks.soft_delete(task.id, as_user=olga, actor="olga")
        assert await allowed(db, "get_project", id=project.id, as_user=ana)
        for user in (ana, oscar):
            assert not await allowed(db, "get_deleted_task", id=task.id, as_user=user)
            assert not await allowed(db, "restore_task", id=task.id, as_user=user)
        assert await allowed(db, "get_deleted_task", id=task.id, as_user=olga)
        assert await allowed(db, "restore_task", id=task.id, as_user=olga)

        await db.projects.soft_delete(project.id, as_user=olga, actor="olga")
        for user in (ana, oscar):
            assert not await allowed(db, "get_deleted_project", id=project.id, as_user=user)
            assert not await allowed(db, "restore_project", id=project.id, as_user=user)
        assert await allowed(db, "get_deleted_project", id=project.id, as_user=olga)
        assert await allowed(db, "restore_project", id=project.id, as_user=olga)
        # The service's own soft delete and restore, for the owner, through them.
        gone = await db.projects.soft_delete(project.id, as_user=olga, actor="olga")
        back = await db.projects.restore(
            project.id, as_user=olga, expected_version=gone.version, actor="olga"
        )
        assert back.deleted_at is None
        gone_task = await db.tasks.soft_delete(task.id, as_user=olga, actor="olga")
        assert (await db.tasks.restore(gone_task.id, as_user=olga, actor="olga")).deleted_at is None


async def seed(db: Any) -> dict[str, Any]:
    """Olga's projects in every state, each with a task assigned to ana; oscar has none."""
    ids = await make_users(db, "olga", "ana", "oscar")
    projects = {
        state: await project_in_state(db, ids["olga"], state, state)
        for state in ("private", "public", "archived", "archived_public")
    }
    tasks = {
        state: await db.tasks.create(
            p.id, NewTask(title=state, assignee_id=ids["ana"]), as_user=ids["olga"], actor="olga"
        )
        for state, p in projects.items()
        if not state.startswith("archived")
    }
    deleted = await project_in_state(db, ids["olga"], "deleted", "deleted")
    deleted_public = await db.projects.create(
        NewProject(name="deleted public", is_public=True), owner_id=ids["olga"], actor="olga"
    )
    await db.projects.soft_delete(deleted_public.id, as_user=ids["olga"], actor="olga")
    return {"ids": ids, "projects": projects, "tasks": tasks, "deleted": [deleted, deleted_public]}


async def test_raw_sql_as_the_service_role_without_a_user_sees_no_private_row(
    vdata_db: Any, vdata_app_dsn: str
) -> None:
    data = await seed(vdata_db)
    public = {data["projects"]["public"].id, data["projects"]["archived_public"].id}
    app = await asyncpg.connect(vdata_app_dsn)
    try:
        # The operator's query from the report: nothing private comes back.
        assert await app.fetch("SELECT id, name FROM app.projects WHERE NOT is_public") == []
        assert {r["id"] for r in await app.fetch("SELECT id FROM app.projects")} == public
        tasks = await app.fetch("SELECT id, project_id FROM app.tasks")
        assert {r["id"] for r in tasks} == {data["tasks"]["public"].id}
        assert await app.fetchval("SELECT current_setting('vdata.user_id', true)") in (None, "")
        # Writes without a user reach nothing either; inserts are refused.
        assert await app.execute("UPDATE app.projects SET name = name || '!'") == "UPDATE 0"
        assert await app.execute("UPDATE app.tasks SET title = 'x'") == "UPDATE 0"
        assert await app.execute("DELETE FROM app.projects") == "DELETE 0"
        assert await app.execute("DELETE FROM app.tasks") == "DELETE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await app.execute(
                "INSERT INTO app.projects (owner_id, name, created_by, updated_by)"
                " VALUES ($1, 'sneaky', 'x', 'x')",
                data["ids"]["oscar"],
            )
        # Acting for oscar shows oscar nothing of olga's but what is public.
        async with app.transaction():
            await app.execute("SELECT app.act_as($1)", data["ids"]["oscar"])
            seen = {r["id"] for r in await app.fetch("SELECT id FROM app.projects")}
            assert seen == public
        # ... and the setting ended with that transaction.
        assert await app.fetch("SELECT id FROM app.projects WHERE NOT is_public") == []
    finally:
        await app.close()


async def test_the_acting_user_never_outlives_its_statement_or_transaction(
    vdata_db: Any,
) -> None:
    db = vdata_db  # pool of one connection: every call below shares one backend
    data = await seed(db)
    olga, oscar, ana = (data["ids"][n] for n in ("olga", "oscar", "ana"))
    private = data["projects"]["private"]
    task = data["tasks"]["private"]

    async def sees(as_user: uuid.UUID | None) -> bool:
        return await allowed(db, "get_project", id=private.id, as_user=as_user)

    for _ in range(3):  # interleaved users on the one connection
        assert (await db.projects.get(private.id, as_user=olga)).id == private.id
        assert not await sees(None)
        with pytest.raises(NotFoundError):
            await db.projects.get(private.id, as_user=oscar)
        assert not await sees(None)
        assert (await db.tasks.get(task.id, as_user=ana)).id == task.id
        assert await sees(ana)  # the assignee sees the project of her task
        assert not await sees(oscar)
        assert await sees(olga)
        assert not await sees(None)

    probe = rls("get_project")
    # A whole transaction acting for olga: statements without a user of their
    # own see her rows; the setting ends with the transaction, even a failed one.
    async with db.transaction(as_user=olga) as tx:
        assert await tx.fetchval(probe, probe.arguments((), {"id": private.id, "as_user": olga}))
        rows = await tx.projects.many(_ALL_PRIVATE)
        # Her private projects: live, archived and (the owner's own) deleted.
        olgas = {private.id, data["projects"]["archived"].id, data["deleted"][0].id}
        assert {p.id for p in rows} == olgas
    assert await db.projects.many(_ALL_PRIVATE) == []
    rerun = await db.run_in_transaction(lambda tx: tx.projects.many(_ALL_PRIVATE), as_user=olga)
    assert {p.id for p in rerun} == olgas
    assert await db.projects.many(_ALL_PRIVATE) == []
    with pytest.raises(RuntimeError):
        async with db.transaction(as_user=olga) as tx:
            assert len(await tx.projects.many(_ALL_PRIVATE)) == len(olgas)
            raise RuntimeError("abort")
    assert await db.projects.many(_ALL_PRIVATE) == []
    assert not await sees(None)


async def test_concurrent_users_on_a_small_pool_see_only_their_own(vdata_db: Any) -> None:
    db = vdata_db
    data = await seed(db)
    olga, oscar = data["ids"]["olga"], data["ids"]["oscar"]
    mine = await db.projects.create(NewProject(name="oscar's"), owner_id=oscar, actor="oscar")
    public = {data["projects"]["public"].id, data["projects"]["archived_public"].id}
    olgas = public | {data["projects"]["private"].id, data["projects"]["archived"].id}
    # What the policies alone show olga: her deleted projects too (the owner's).
    olgas_all = olgas | {p.id for p in data["deleted"]}

    async def user(as_user: uuid.UUID, listed: set[uuid.UUID], seen: set[uuid.UUID]) -> None:
        for _ in range(10):
            page = await db.projects.list_visible(as_user=as_user, limit=100)
            assert {p.id for p in page.items} == listed
            async with db.transaction(as_user=as_user) as tx:
                await asyncio.sleep(0)  # let the other users' calls run meanwhile
                assert {p.id for p in await tx.projects.many(_ALL)} == seen
            assert await db.projects.many(_ALL_PRIVATE) == []

    oscars = public | {mine.id}
    await asyncio.gather(
        user(olga, olgas, olgas_all), user(oscar, oscars, oscars), user(olga, olgas, olgas_all)
    )


# Every project the policies let the acting user see: no predicate on the user.
_ALL = QUERIES.bind("rls.list_projects", Project)
_ALL_PRIVATE = QUERIES.bind("rls.list_private_projects", Project)
