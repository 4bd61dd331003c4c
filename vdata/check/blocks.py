"""Read the ``-- name:`` blocks of SQL files without aiosql, for ``vdata check``.

aiosql lets a later query silently shadow an earlier one of the same name and
refuses to load a whole folder over one undeclared parameter; the check needs
to see every block, with its file and line, to report all of that at once.
"""

from __future__ import annotations

__all__ = ["Block", "read_blocks", "strip_hidden", "used_params"]

import re
from dataclasses import dataclass
from pathlib import Path

# aiosql's own grammar: a name, an optional parameter list, an optional suffix.
_NAME = re.compile(
    r"^--\s*name\s*:\s*(?P<name>[\w-]+)\s*(?:\((?P<params>[^)]*)\))?\s*(?P<suffix><!|\*!|!|#|\$|\^)?\s*$"
)
# What can hide a ``:name`` from the scan: comments, string literals, quoted
# identifiers and dollar-quoted bodies.
_HIDING = re.compile(
    r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(\$[A-Za-z_]*\$).*?\1",
    re.DOTALL,
)
# ``:name`` but not ``::cast`` (the lookbehind also skips ``a::b`` on the right).
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True, slots=True)
class Block:
    """One ``-- name:`` block: where it is, what it declares, what it says."""

    path: Path
    line: int
    namespace: str
    name: str
    declared: tuple[str, ...] | None  # None: no parameter list at all
    suffix: str
    doc: tuple[str, ...]
    body: str

    @property
    def qualified(self) -> str:
        """Return ``<folder>.<name>``, the key vdata's loader uses."""
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


def strip_hidden(sql: str) -> str:
    """Return *sql* with comments, literals and quoted identifiers blanked out."""
    return _HIDING.sub(" ", sql)


def used_params(body: str) -> list[str]:
    """Return the ``:name`` parameters *body* uses, in first-use order."""
    seen: dict[str, None] = {}
    for match in _PARAM.finditer(strip_hidden(body)):
        seen.setdefault(match.group(1), None)
    return list(seen)


def _blocks_of(path: Path, namespace: str) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [i for i, text in enumerate(lines) if _NAME.match(text.strip())]
    blocks = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        match = _NAME.match(lines[start].strip())
        assert match is not None
        doc: list[str] = []
        i = start + 1
        while i < end and lines[i].lstrip().startswith("--"):
            doc.append(lines[i].lstrip()[2:].strip())
            i += 1
        params = match.group("params")
        declared = None
        if params is not None:
            declared = tuple(p.strip() for p in params.split(",") if p.strip())
        blocks.append(
            Block(
                path=path,
                line=start + 1,
                namespace=namespace,
                name=match.group("name").replace("-", "_"),
                declared=declared,
                suffix=match.group("suffix") or "",
                doc=tuple(d for d in doc if d),
                body="\n".join(lines[i:end]),
            )
        )
    return blocks


def read_blocks(root: Path) -> list[Block]:
    """Return every named block of every ``.sql`` file under *root*, in file order."""
    blocks: list[Block] = []
    for path in sorted(root.rglob("*.sql")):
        rel = path.relative_to(root).parent.parts
        blocks.extend(_blocks_of(path, ".".join(rel)))
    return blocks
