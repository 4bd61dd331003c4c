"""A method taking an input Struct refuses anything else with a ValidationError, writing nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import vdata

pytestmark = pytest.mark.integration

SOMEONE = uuid.uuid4()
NOT_A_STRUCT: list[Any] = ["x", 7, None, {"username": "ada"}, [], b"\x00"]

CALLS: dict[str, tuple[str, Callable[[vdata.Transaction, Any], Awaitable[object]]]] = {
    "users.create": ("new", lambda tx, bad: tx.users.create(bad)),
    "users.update": ("patch", lambda tx, bad: tx.users.update(SOMEONE, bad, expected_version=1)),
    "projects.create": ("new", lambda tx, bad: tx.projects.create(bad, owner_id=SOMEONE)),
    "projects.update": (
        "patch",
        lambda tx, bad: tx.projects.update(SOMEONE, bad, expected_version=1, as_user=SOMEONE),
    ),
    "tasks.create": ("new", lambda tx, bad: tx.tasks.create(SOMEONE, bad, as_user=SOMEONE)),
    "tasks.create_many": (
        "new",
        lambda tx, bad: tx.tasks.create_many(SOMEONE, [bad], as_user=SOMEONE),
    ),
    "tasks.update": (
        "patch",
        lambda tx, bad: tx.tasks.update(SOMEONE, bad, expected_version=1, as_user=SOMEONE),
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("bad", NOT_A_STRUCT, ids=repr)
async def test_anything_but_the_input_struct_is_a_validation_error(
    vdata_tx: vdata.Transaction, name: str, bad: Any
) -> None:
    field, call = CALLS[name]
    async with vdata_tx.transaction() as savepoint:  # an error must leave nothing behind
        with pytest.raises(vdata.ValidationError) as caught:
            await call(savepoint, bad)
    assert caught.value.field == field
    assert await vdata_tx.users.list(include_deleted=True) == []
