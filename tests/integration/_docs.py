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


_MARKED = re.compile(
    r"^<!-- (file|later): (\S+) -->\n```[a-z]*\n(.*?)^```$", re.MULTILINE | re.DOTALL
)


def file_blocks(page: str, marker: str = "file") -> dict[str, str]:
    """Return the fenced blocks of docs/<page> preceded by ``<!-- marker: PATH -->``, by PATH.

    ``file`` marks the files a page builds; ``later`` those a later step adds.
    """
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks: dict[str, str] = {}
    for kind, path, body in _MARKED.findall(text):
        if kind == marker:
            assert path not in blocks, f"{page}: {path} is given twice"
            blocks[path] = body
    return blocks
