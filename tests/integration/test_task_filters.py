"""tasks.find / find_after: membership and range filters over static SQL, both paginations.

Every filter combination below is checked against the same filter applied in
Python to every task, through offset pages and keyset pages alike.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from tests.integration._users import cheap_settings
from tests.integration._work import make_users
from vdata.errors import ValidationError
from vdata.models.projects import NewProject
from vdata.models.tasks import NewTask, Task, TaskFilter, TaskPatch

pytestmark = pytest.mark.integration

UTC = dt.UTC


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: these tests create users, they do not measure hashing."""
    return cheap_settings()


def matches(task: Task, project_ids: set[uuid.UUID], f: TaskFilter) -> bool:
    """The filter's meaning, written in Python: the oracle for the SQL."""

    def within(
        value: dt.datetime | None, low: dt.datetime | None, high: dt.datetime | None
    ) -> bool:
        if low is None and high is None:
            return True
        if value is None:
            return False
        return (low is None or value >= low) and (high is None or value < high)

    return (
        task.project_id in project_ids
        and (f.statuses is None or task.status in f.statuses)
        and (f.assignee_ids is None or task.assignee_id in f.assignee_ids)
        and (f.priority_min is None or task.priority >= f.priority_min)
        and (f.priority_max is None or task.priority <= f.priority_max)
        and within(task.created_at, f.created_from, f.created_to)
        and within(task.updated_at, f.updated_from, f.updated_to)
        and within(task.due_at, f.due_from, f.due_to)
    )


async def all_pages(db: Any, project_ids: list[uuid.UUID], f: TaskFilter, user: uuid.UUID) -> Any:
    """Return (offset-paged tasks, total, keyset-paged tasks), 3 per page."""
    offset_items: list[Task] = []
    total = None
    offset = 0
    while True:
        page = await db.tasks.find(project_ids, f, as_user=user, offset=offset, limit=3)
        total = page.total if total is None else total
        assert page.total == total
        offset_items += page.items
        offset += 3
        if offset >= page.total:
            break
    keyset_items: list[Task] = []
    cursor = None
    while True:
        piece = await db.tasks.find_after(project_ids, f, as_user=user, cursor=cursor, limit=3)
        keyset_items += piece.items
        cursor = piece.next_cursor
        if cursor is None:
            break
    return offset_items, total, keyset_items


async def test_filters_match_the_python_oracle(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar", "ivan")
    olga, ivan = ids["olga"], ids["ivan"]
    projects = [
        (await db.projects.create(NewProject(name=f"p{i}"), owner_id=olga, actor="olga")).id
        for i in range(3)
    ]
    base = dt.datetime(2030, 1, 1, tzinfo=UTC)
    tasks: list[Task] = []
    for i in range(18):  # one call each: created_at moves on between them
        tasks.append(
            await db.tasks.create(
                projects[i % 3],
                NewTask(
                    title=f"t{i}",
                    priority=i % 5,
                    assignee_id=(ivan, olga, None)[i % 3 if i % 2 else 2],
                    due_at=None if i % 4 == 0 else base + dt.timedelta(days=i),
                ),
                as_user=olga,
                actor="olga",
            )
        )
    for task in tasks[::4]:
        await db.tasks.set_status(task.id, "in_progress", as_user=olga, actor="olga")
    for task in tasks[1::5]:
        await db.tasks.update(
            task.id,
            TaskPatch(description="later"),
            expected_version=(await db.tasks.get(task.id, as_user=olga)).version,
            as_user=olga,
            actor="olga",
        )
    everything = [await db.tasks.get(t.id, as_user=olga) for t in tasks]
    created = sorted(t.created_at for t in everything)
    updated = sorted(t.updated_at for t in everything)
    filters = [
        TaskFilter(),
        TaskFilter(statuses=["in_progress"]),
        TaskFilter(statuses=["todo", "in_progress"], priority_min=1, priority_max=3),
        TaskFilter(assignee_ids=[ivan]),
        TaskFilter(assignee_ids=[ivan, olga], statuses=["todo"]),
        TaskFilter(priority_max=0),
        TaskFilter(created_from=created[4], created_to=created[11]),
        TaskFilter(updated_from=updated[-3]),
        TaskFilter(due_from=base + dt.timedelta(days=3), due_to=base + dt.timedelta(days=10)),
        TaskFilter(due_to=base + dt.timedelta(days=100), priority_min=2),
        TaskFilter(statuses=[]),  # an empty list matches nothing
    ]
    for chosen in ([projects[0]], projects[:2], projects):
        for f in filters:
            want = sorted(
                (t for t in everything if matches(t, set(chosen), f)),
                key=lambda t: (t.created_at, t.id),
            )
            offset_items, total, keyset_items = await all_pages(db, chosen, f, olga)
            assert [t.id for t in offset_items] == [t.id for t in want], f
            assert [t.id for t in keyset_items] == [t.id for t in want], f
            assert total == len(want)
            if chosen == projects and f not in (filters[0], filters[-1]):
                assert 0 < len(want) < len(everything), f  # each filter really filters
    assert (await db.tasks.find(projects, TaskFilter(statuses=[]), as_user=olga)).total == 0


async def test_only_visible_tasks_are_listed(vdata_db: Any) -> None:
    db = vdata_db
    ids = await make_users(db, "olga", "oscar")
    olga, oscar = ids["olga"], ids["oscar"]
    private = await db.projects.create(NewProject(name="private"), owner_id=olga, actor="olga")
    public = await db.projects.create(
        NewProject(name="public", is_public=True), owner_id=olga, actor="olga"
    )
    hidden = await db.tasks.create(private.id, NewTask(title="hidden"), as_user=olga, actor="o")
    shown = await db.tasks.create(public.id, NewTask(title="shown"), as_user=olga, actor="o")
    mine = await db.tasks.create(
        private.id, NewTask(title="assigned", assignee_id=oscar), as_user=olga, actor="o"
    )
    both = [private.id, public.id]
    page = await db.tasks.find(both, as_user=oscar)
    assert {t.id for t in page.items} == {shown.id, mine.id} and page.total == 2
    assert hidden.id in {t.id for t in (await db.tasks.find(both, as_user=olga)).items}
    await db.tasks.soft_delete(shown.id, as_user=olga, actor="olga")
    assert [t.id for t in (await db.tasks.find_after(both, as_user=oscar)).items] == [mine.id]


@pytest.mark.parametrize(
    ("project_ids", "where", "field"),
    [
        ([], None, "project_ids"),
        ("not-a-list", None, "project_ids"),
        ([uuid.uuid4()] * 1 + ["x"], None, "project_ids"),
        ([uuid.uuid4()], TaskFilter(statuses=["nope"]), "status"),
        ([uuid.uuid4()], TaskFilter(statuses="todo"), "statuses"),  # type: ignore[arg-type]
        ([uuid.uuid4()], TaskFilter(priority_min=5), "priority"),
        ([uuid.uuid4()], TaskFilter(created_from=dt.datetime(2030, 1, 1)), "created_from"),
        (
            [uuid.uuid4()],
            TaskFilter(
                due_from=dt.datetime(2030, 2, 1, tzinfo=UTC),
                due_to=dt.datetime(2030, 1, 1, tzinfo=UTC),
            ),
            "due_from",
        ),
        ([uuid.uuid4()], TaskFilter(assignee_ids=["x"]), "assignee_ids"),  # type: ignore[list-item]
        ([uuid.uuid4()], {"statuses": ["todo"]}, "where"),
    ],
)
async def test_bad_filters_are_validation_errors(
    vdata_db: Any, project_ids: Any, where: Any, field: str
) -> None:
    user = uuid.uuid4()
    for call in (vdata_db.tasks.find, vdata_db.tasks.find_after):
        with pytest.raises(ValidationError) as caught:
            await call(project_ids, where, as_user=user)
        assert caught.value.field == field
