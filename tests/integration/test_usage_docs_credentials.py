"""The examples of docs/usage/api_keys.md and docs/usage/sessions.md, run as written."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import asyncpg
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
    """Cheap argon2 parameters and a pepper, as a production service would set."""
    return cheap_settings(secret_key="docs-pepper-not-a-real-secret")


async def run_blocks(name: str, namespace: dict[str, Any]) -> None:
    """Run each block of *name* with top-level await in one shared namespace."""
    for number, block in enumerate(python_blocks(name), 1):
        code = compile(
            block, f"docs/usage/{name} block {number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)  # noqa: S307 - our own documentation
        if result is not None:
            await result


def test_the_docs_have_examples() -> None:
    assert len(python_blocks("api_keys.md")) >= 6
    assert len(python_blocks("sessions.md")) >= 4


async def test_api_key_examples_run(vdata_db: Any, vdata_dsn: str) -> None:
    namespace: dict[str, Any] = {"db": vdata_db}
    await run_blocks("api_keys.md", namespace)
    owner = await asyncpg.connect(vdata_dsn)
    try:
        actions = [
            r[0]
            for r in await owner.fetch(
                "SELECT action FROM app.audit_log WHERE entity_type = 'api_key' ORDER BY id"
            )
        ]
    finally:
        await owner.close()
    expected = ["api_key.issue", "api_key.issue", "api_key.revoke", "api_key.rotate"]
    assert actions == [*expected, "api_key.issue"]


async def test_session_examples_run(vdata_db: Any) -> None:
    namespace: dict[str, Any] = {"db": vdata_db}
    await run_blocks("sessions.md", namespace)
    assert len(await vdata_db.sessions.list_active(namespace["grace"].id)) == 1
