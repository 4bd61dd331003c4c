"""The examples of docs/usage/api_keys.md and docs/usage/sessions.md, run as written."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.integration._docs import python_blocks, run_blocks
from tests.integration._users import cheap_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters and a pepper, as a production service would set."""
    return cheap_settings(secret_key="docs-pepper-not-a-real-secret")


def test_the_docs_have_examples() -> None:
    assert len(python_blocks("api_keys.md")) >= 8
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
    expected = [
        "api_key.issue",
        "api_key.refuse",
        "api_key.issue",
        "api_key.revoke",
        "api_key.soft_delete",
        "api_key.restore",
        "api_key.rotate",
    ]
    assert actions == [*expected, "api_key.issue", "api_key.update"]


async def test_session_examples_run(vdata_db: Any) -> None:
    namespace: dict[str, Any] = {"db": vdata_db}
    await run_blocks("sessions.md", namespace)
    assert len(await vdata_db.sessions.list_active(namespace["grace"].id)) == 1
