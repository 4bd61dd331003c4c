"""The examples of docs/usage/projects.md, tasks.md and audit.md, run as written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration._docs import python_blocks, run_blocks
from tests.integration._users import cheap_settings

pytestmark = pytest.mark.integration

PAGES = ("projects.md", "tasks.md", "audit.md")


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: the examples show behaviour, not hashing cost."""
    return cheap_settings()


def test_the_pages_have_examples() -> None:
    for page in PAGES:
        assert len(python_blocks(page)) >= 4, page


async def test_projects_tasks_and_audit_examples_run(vdata_db: Any) -> None:
    namespace: dict[str, Any] = {"db": vdata_db}
    for page in PAGES:
        await run_blocks(page, namespace)
    assert (await vdata_db.audit.verify_chain()).ok
