"""Shared test configuration.

The PostgreSQL fixtures (``vdata_server``, ``vdata_template_dsn``, ``vdata_dsn``,
``vdata_app_dsn``, ``vdata_db``, ``vdata_tx``) come from the ``vdata.testing``
plugin, loaded through its ``pytest11`` entry point; see docs/testing.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    for item in items:
        if _INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
