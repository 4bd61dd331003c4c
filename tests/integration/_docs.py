"""Run the fenced Python examples of a documentation page, in order, as written."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: str) -> list[str]:
    """Return the fenced ``python`` blocks of docs/<page> (or docs/usage/<page>), in order."""
    path = DOCS / page if (DOCS / page).is_file() else DOCS / "usage" / page
    return _BLOCK.findall(path.read_text(encoding="utf-8"))


async def run_blocks(page: str, namespace: dict[str, Any]) -> None:
    """Run each block of *page* with top-level await in one shared *namespace*."""
    for number, block in enumerate(python_blocks(page), 1):
        code = compile(
            block, f"{page} block {number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)  # noqa: S307 - our own documentation
        if result is not None:
            await result
