"""examples/invoices is the service docs/extending.md builds, file for file."""

from __future__ import annotations

from pathlib import Path

from tests.integration._docs import DOCS, file_blocks

EXAMPLE = DOCS.parent / "examples" / "invoices"


def test_every_file_of_the_walk_through_is_the_example_s_file() -> None:
    blocks = file_blocks("extending.md")
    assert len(blocks) >= 9
    for path, body in blocks.items():
        assert (EXAMPLE / path).read_text(encoding="utf-8") == body, f"{path} differs"


def test_the_walk_through_builds_a_whole_service() -> None:
    blocks = file_blocks("extending.md")
    for needed in (
        "pyproject.toml",
        "invoices/__init__.py",
        "invoices/models.py",
        "invoices/repositories.py",
        "invoices/sql/invoices/invoices.sql",
        "invoices/migrations/0001.create-invoices.sql",
        "invoices/migrations/0001.create-invoices.rollback.sql",
        "tests/conftest.py",
        "tests/test_invoices.py",
    ):
        assert needed in blocks, f"docs/extending.md gives no {needed}"
    later = file_blocks("extending.md", "later")
    assert {Path(p).name for p in later} == {
        "0002.rename-invoices-customer.sql",
        "0002.rename-invoices-customer.rollback.sql",
    }
