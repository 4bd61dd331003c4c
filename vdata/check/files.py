"""Load the queries ``vdata check`` looks at, and what the files alone reveal.

The loader in ``vdata.queries`` fails a whole folder over one bad block
(aiosql refuses undeclared parameters); the check must still report every
other query, so when loading fails each block is loaded on its own (and
without the Structs bound to it, which live on the loaded folder).
"""

from __future__ import annotations

__all__ = ["LoadedQueries", "load_for_check", "static_problems"]

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosql

from vdata.check.blocks import Block, read_blocks, used_params
from vdata.check.report import Problem
from vdata.queries import Query, QueryKind, load_queries

# Doc lines that are instructions to the tools, not documentation.
_MARKERS = ("not-null", "seqscan-ok")

_KINDS = {
    "": QueryKind.MANY,
    "^": QueryKind.ONE,
    "$": QueryKind.VALUE,
    "<!": QueryKind.ONE,
    "!": QueryKind.EXECUTE,
    "*!": QueryKind.EXECUTE,
}


def shown(path: Path) -> str:
    """Return *path* relative to the working directory when it is below it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


@dataclass
class LoadedQueries:
    """The queries to check, the blocks they came from, and the problems so far."""

    root: Path
    queries: list[Query[Any]]
    blocks: list[Block]
    problems: list[Problem] = field(default_factory=list)
    structs_known: bool = True  # False when the folder did not load: Structs are unknown

    def where(self, q: Query[Any]) -> tuple[str, int]:
        """Return the file and line of *q*'s ``-- name:`` line."""
        same = [b for b in self.blocks if b.qualified == q.name]
        in_file = [b for b in same if b.path.resolve() == Path(q.path).resolve()]
        exact = [b for b in in_file if b.line == q.line]  # loaded block by block
        candidates = exact or in_file or same  # aiosql keeps the last of duplicates
        if not candidates:
            return shown(Path(q.path)), q.line
        return shown(candidates[-1].path), candidates[-1].line


def static_problems(blocks: list[Block]) -> list[Problem]:
    """Return what is wrong in the files alone: names, doc comments, parameters."""
    problems: list[Problem] = []

    def add(b: Block, kind: str, message: str) -> None:
        problems.append(
            Problem(path=shown(b.path), line=b.line, query=b.qualified, kind=kind, message=message)
        )

    first: dict[str, Block] = {}
    for b in blocks:
        if b.qualified in first:
            other = first[b.qualified]
            add(
                b,
                "duplicate",
                f"the name {b.name} is already used at {shown(other.path)}:{other.line} "
                "in the same folder; aiosql silently keeps only one of them",
            )
        else:
            first[b.qualified] = b
        if not [d for d in b.doc if not d.lower().startswith(_MARKERS)]:
            add(b, "doc", "no doc comment under the name line (what it returns, what can fail)")
        if b.suffix == "#":
            add(b, "shape", "a `#` script: DDL belongs in migrations/, not sql/")
        if b.declared is None:
            add(b, "params", f"no parameter list: write {b.name}(a, b) or {b.name}()")
            continue
        used = used_params(b.body)
        undeclared = [p for p in used if p not in b.declared]
        unused = [p for p in b.declared if p not in used]
        if undeclared:
            add(
                b,
                "params",
                "uses undeclared parameter(s) "
                + ", ".join(f":{p}" for p in undeclared)
                + " (aiosql refuses to load the whole folder)",
            )
        if unused:
            add(b, "params", f"declares parameter(s) never used: {', '.join(unused)}")
    return problems


def _load_block(b: Block) -> Query[Any]:
    """Load one block through aiosql, as ``vdata.queries`` would."""
    text = "\n".join(
        [f"-- name: {b.name}({', '.join(b.declared or ())}){b.suffix}"]
        + [f"-- {d}" for d in b.doc]
        + [b.body]
    )
    loaded = aiosql.from_str(text, "asyncpg", kwargs_only=True)
    fn = getattr(loaded, b.name)
    return Query(
        name=b.qualified,
        sql=fn.sql,
        params=tuple(loaded.driver_adapter.var_sorted.get(b.name, ())),
        kind=_KINDS[b.suffix],
        doc=(fn.__doc__ or "").strip(),
        path=b.path,
        line=b.line,
    )


def load_for_check(root: Path) -> LoadedQueries:
    """Load the queries under *root*, each the bound version where a Struct was bound.

    The folder is loaded through ``vdata.load_queries``, once per process:
    the same object the repositories bound their Structs on.
    """
    blocks = read_blocks(root)
    problems = static_problems(blocks)
    try:
        return LoadedQueries(root, list(load_queries(root)), blocks, problems)
    except Exception as exc:
        problems.append(
            Problem(
                path=shown(root),
                line=0,
                query="",
                kind="load",
                message=f"the folder does not load ({exc}); each query is checked "
                "on its own, without its Struct",
            )
        )
    queries: list[Query[Any]] = []
    bad = {(p.path, p.line) for p in problems if p.kind == "params"}
    for b in blocks:
        if (shown(b.path), b.line) in bad or b.suffix == "#":
            continue
        try:
            queries.append(_load_block(b))
        except Exception as exc:
            problems.append(
                Problem(
                    path=shown(b.path),
                    line=b.line,
                    query=b.qualified,
                    kind="load",
                    message=f"aiosql cannot load it: {exc}",
                )
            )
    return LoadedQueries(root, queries, blocks, problems, structs_known=False)
