"""UserRepository listings on a real PostgreSQL: filters, sort allow-list, offset and keyset."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration._users import cheap_settings, new_user
from vdata import ValidationError

pytestmark = pytest.mark.integration


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters for every test of this module."""
    return cheap_settings()


async def test_list_filters_offset_page_and_keyset(vdata_db: Any) -> None:
    users = vdata_db.users
    made = []
    for i in range(7):
        made.append(
            await users.create(new_user(f"user{i}", email=f"person{i}@example.org"), actor="admin")
        )
    await users.deactivate(made[1].id, actor="admin")
    issued = await users.issue_email_verification(made[2].id, actor="admin")
    await users.verify_email(issued.token)
    await users.soft_delete(made[3].id, actor="admin")

    assert len(await users.list()) == 6
    assert [u.username for u in await users.list(active=False)] == ["user1"]
    assert [u.username for u in await users.list(verified=True)] == ["user2"]
    assert len(await users.list(verified=False)) == 5
    assert [u.username for u in await users.list(search="USER5")] == ["user5"]
    assert [u.username for u in await users.list(search="person6")] == ["user6"]
    assert len(await users.list(include_deleted=True)) == 7
    names = [u.username for u in await users.list(sort="username", limit=3, offset=1)]
    assert names == ["user1", "user2", "user4"]
    with pytest.raises(ValidationError):
        await users.list(sort="password_hash")
    with pytest.raises(ValidationError):
        await users.list(limit=0)

    page = await users.list_page(limit=4)
    assert page.total == 6 and len(page.items) == 4
    last = await users.list_page(limit=4, offset=4)
    assert last.total == 6 and len(last.items) == 2
    filtered = await users.list_page(active=True, limit=2, offset=2)
    assert filtered.total == 5

    seen: list[str] = []
    cursor = None
    while True:
        chunk = await users.list_after(cursor, limit=4)
        seen += [u.username for u in chunk.items]
        if chunk.next_cursor is None:
            break
        cursor = chunk.next_cursor
    assert seen == [u.username for u in made if u.username != "user3"]
    first = await users.list_after(None, limit=2)
    assert first.next_cursor is not None
    tampered = first.next_cursor[:-2] + ("AA" if first.next_cursor[-2:] != "AA" else "BB")
    with pytest.raises(ValidationError):
        await users.list_after(tampered, limit=2)
