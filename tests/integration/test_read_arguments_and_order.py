"""Audit ids are consecutive, a bulk create lists in the order given, reads validate input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest

from tests.integration._users import cheap_settings
from tests.integration._work import make_users
from vdata.errors import ValidationError
from vdata.models import NewProject, NewTask

pytestmark = pytest.mark.integration


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: these tests create users, they do not measure hashing."""
    return cheap_settings()


async def test_each_audit_row_takes_one_id(vdata_db: Any, vdata_dsn: str) -> None:
    db = vdata_db
    events = [await db.audit.record("user.login", "user", str(n), actor="ada") for n in range(5)]
    async with db.transaction(actor="ada") as tx:
        events += [await tx.audit.record("user.login", "user", str(n)) for n in range(3)]
    ids = [e.id for e in events]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    owner = await asyncpg.connect(vdata_dsn)
    try:
        # The column has no default of its own: only the chain trigger draws.
        assert (
            await owner.fetchval(
                "SELECT attidentity = '' FROM pg_attribute "
                "WHERE attrelid = 'app.audit_log'::regclass AND attname = 'id'"
            )
            is True
        )
        assert await owner.fetchval("SELECT last_value FROM app.audit_log_id_seq") == ids[-1]
    finally:
        await owner.close()


async def test_a_bulk_create_lists_in_the_order_given(vdata_db: Any) -> None:
    db = vdata_db
    olga = (await make_users(db, "olga"))["olga"]
    project = await db.projects.create(NewProject(name="bulk order"), owner_id=olga, actor="olga")
    titles = [f"step {n:03}" for n in range(200)][::-1]  # not alphabetical either
    created = await db.tasks.create_many(
        project.id, [NewTask(title=t) for t in titles], as_user=olga, actor="importer"
    )
    assert len({t.created_at for t in created}) == 1  # one transaction, one now()
    listed = await db.tasks.list_by_project(project.id, as_user=olga, limit=1000)
    assert [t.title for t in listed.items] == titles
    # Paged by keyset too.
    seen: list[str] = []
    cursor = None
    while True:
        page = await db.tasks.list_by_project(project.id, as_user=olga, cursor=cursor, limit=37)
        seen += [t.title for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == titles
    events = await db.audit.search(action="task.create", limit=1000)
    by_id = sorted(events.items, key=lambda e: e.id)
    assert [e.entity_id for e in by_id] == [str(t.id) for t in created]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda db, u: db.projects.list_visible(as_user=u, search="a\x00b"), "search"),
        (lambda db, u: db.projects.list_visible_after(as_user=u, search="a\x00b"), "search"),
        (lambda db, u: db.projects.list_visible(as_user=u, search="x" * 20_000), "search"),
        (lambda db, u: db.audit.search(actor="a\x00b"), "actor"),
        (lambda db, u: db.audit.search(actor="x" * 20_000), "actor"),
        (lambda db, u: db.audit.search(entity_id="a\x00b"), "entity_id"),
        (lambda db, u: db.audit.search(action="x" * 64), "action"),
        (lambda db, u: db.audit.search(since=dt.datetime(2024, 1, 1)), "since"),
        (lambda db, u: db.audit.search(until=dt.datetime(2024, 1, 1)), "until"),
        (lambda db, u: db.audit.activity("a\x00b"), "actor"),
        (lambda db, u: db.audit.activity("ada", since=dt.datetime(2024, 1, 1)), "since"),
        (lambda db, u: db.audit.history("user", "a\x00b"), "entity_id"),
        (lambda db, u: db.audit.stats(since=dt.datetime(2024, 1, 1)), "since"),
    ],
)
async def test_read_arguments_are_validated_like_writes(
    vdata_db: Any, call: Any, field: str
) -> None:
    db = vdata_db
    user = (await make_users(db, "vera"))["vera"]
    with pytest.raises(ValidationError) as caught:
        await call(db, user)
    assert caught.value.field == field
    assert caught.value.sqlstate is None  # refused before the server
    assert "\x00" not in str(caught.value)


async def test_aware_datetimes_and_plain_filters_still_work(vdata_db: Any) -> None:
    db = vdata_db
    await db.audit.record("user.login", "user", "u1", actor="ada")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    found = await db.audit.search(actor="ada", since=since)
    assert [e.entity_id for e in found.items] == ["u1"]
    export = [e async for e in db.audit.export(since=since)]
    assert len(export) == 1
    with pytest.raises(ValidationError):
        [e async for e in db.audit.export(since=dt.datetime(2024, 1, 1))]
