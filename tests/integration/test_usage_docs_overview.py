"""The examples of docs/usage.md (the entry page), run as written."""

from __future__ import annotations

from typing import Any

import pytest

import vdata
from tests.integration._docs import python_blocks, run_blocks
from tests.integration._users import cheap_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: the examples show behaviour, not hashing cost."""
    return cheap_settings()


def test_the_page_has_examples() -> None:
    assert len(python_blocks("usage.md")) >= 2


async def test_usage_overview_examples_run(vdata_db: vdata.Database) -> None:
    namespace: dict[str, Any] = {"db": vdata_db}
    await run_blocks("usage.md", namespace)
    ada = await vdata_db.users.get_by_username("ada")
    assert ada.full_name == "Ada L." and ada.is_active
    assert [k.name for k in await vdata_db.api_keys.list_by_owner(ada.id)] == ["ci"]
