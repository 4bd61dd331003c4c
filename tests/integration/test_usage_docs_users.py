"""The examples of docs/usage/users.md and docs/usage/roles.md, run as written."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration._users import cheap_settings

pytestmark = pytest.mark.integration

_DOCS = Path(__file__).resolve().parents[2] / "docs" / "usage"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(name: str) -> list[str]:
    """Return the fenced ``python`` blocks of docs/usage/<name>, in order."""
    return _BLOCK.findall((_DOCS / name).read_text(encoding="utf-8"))


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: the examples show behaviour, not hashing cost."""
    return cheap_settings()


async def run_blocks(blocks: list[str], namespace: dict[str, Any], source: str) -> None:
    """Run each block with top-level await in one shared namespace."""
    for number, block in enumerate(blocks, 1):
        code = compile(
            block, f"{source} block {number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)  # noqa: S307 - our own documentation
        if result is not None:
            await result


def test_the_docs_have_examples() -> None:
    assert len(python_blocks("users.md")) >= 8
    assert len(python_blocks("roles.md")) >= 2


async def test_users_and_roles_examples_run(vdata_db: Any) -> None:
    namespace: dict[str, Any] = {"db": vdata_db}
    await run_blocks(python_blocks("users.md"), namespace, "docs/usage/users.md")
    await run_blocks(python_blocks("roles.md"), namespace, "docs/usage/roles.md")
    assert (await vdata_db.users.get_by_username("erin")).is_active is False
