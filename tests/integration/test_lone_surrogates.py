"""Text with no UTF-8 form (lone surrogates) is refused as a vdata error, never a raw one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import vdata

LONE = "\ud800"

CALLS: dict[str, Callable[[vdata.Database], Awaitable[Any]]] = {
    "sessions.validate": lambda db: db.sessions.validate(LONE),
    "users.verify_email": lambda db: db.users.verify_email(LONE),
    "audit.record(after)": lambda db: db.audit.record(
        "user.exported", "user", after={"k": LONE}, actor="ops"
    ),
    "audit.record(before)": lambda db: db.audit.record(
        "user.exported", "user", before=[LONE], actor="ops"
    ),
    "audit.record(actor)": lambda db: db.audit.record("user.exported", "user", actor=LONE),
    "users.get_by_username": lambda db: db.users.get_by_username(LONE),
    "api_keys.verify": lambda db: db.api_keys.verify(LONE),
    "roles.create": lambda db: db.roles.create("r", description=LONE, actor="ops"),
}


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_a_lone_surrogate_is_a_vdata_error(vdata_db: vdata.Database, name: str) -> None:
    with pytest.raises(vdata.VdataError) as caught:
        await CALLS[name](vdata_db)
    assert LONE not in str(caught.value)
    # The pool is whole and serves the next call.
    health = await vdata_db.health()
    assert health.ok and health.pool.in_use == 0
