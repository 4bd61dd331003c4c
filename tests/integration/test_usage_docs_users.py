"""The examples of docs/usage/users.md and docs/usage/roles.md, run as written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration._docs import python_blocks, run_blocks
from tests.integration._users import cheap_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: the examples show behaviour, not hashing cost."""
    return cheap_settings()


def test_the_docs_have_examples() -> None:
    assert len(python_blocks("users.md")) >= 8
    assert len(python_blocks("roles.md")) >= 2


async def test_users_and_roles_examples_run(vdata_db: Any) -> None:
    namespace: dict[str, Any] = {"db": vdata_db}
    await run_blocks("users.md", namespace)
    await run_blocks("roles.md", namespace)
    assert (await vdata_db.users.get_by_username("erin")).is_active is False
