"""The examples of docs/usage/account_security.md, run as written."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.integration._docs import python_blocks, run_blocks
from tests.integration._users import cheap_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: the examples show behaviour, not hashing cost."""
    return cheap_settings()


def test_the_page_has_examples() -> None:
    assert len(python_blocks("account_security.md")) >= 6


async def test_security_examples_run(vdata_db: Any, vdata_dsn: str) -> None:
    namespace: dict[str, Any] = {"db": vdata_db}
    await run_blocks("account_security.md", namespace)
    owner = await asyncpg.connect(vdata_dsn)
    try:
        actions = [
            r[0]
            for r in await owner.fetch(
                "SELECT action FROM app.audit_log WHERE entity_type = 'user' ORDER BY id"
            )
        ]
        tokens = await owner.fetchval("SELECT count(*) FROM app.password_reset_tokens")
    finally:
        await owner.close()
    assert actions[:3] == ["user.create", "user.password_reset_issue", "user.password_reset"]
    assert actions[-3:] == ["user.lock", "user.unlock", "user.login"]
    assert tokens == 0
