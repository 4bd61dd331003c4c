"""The human-readable form of a ``vdata check`` report."""

from __future__ import annotations

__all__ = ["format_text"]

from itertools import groupby
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vdata.check import Report


def format_text(report: Report, *, verbose: bool = False) -> str:
    """Return every problem grouped by file (``file:line``), then a one-line summary.

    With *verbose*, also each query's inferred parameter types and columns.
    """
    out: list[str] = []
    for path, problems in groupby(report.problems, key=lambda p: p.path):
        out.append(path)
        for p in problems:
            where = f"{path}:{p.line}" if p.line else path
            label = "warning" if p.severity == "warning" else p.kind
            head, *rest = p.message.splitlines()
            name = f" {p.query}" if p.query else ""
            out.append(f"  {where}:{name} [{label}] {head}")
            out.extend(f"      {line}" for line in rest)
        out.append("")
    if verbose:
        for q in report.queries:
            params = ", ".join(f":{p.name} {p.type}" for p in q.params) or "none"
            out.append(f"{q.path}:{q.line}: {q.name} ({q.kind}) -> {q.struct or '-'}")
            out.append(f"    params: {params}")
            for c in q.columns:
                null = "NULL" if c.nullable else "NOT NULL"
                origin = f" <- {c.origin}" if c.origin else ""
                out.append(f"    {c.name} {c.type} {null}{origin}")
        out.append("")
    errors = len(report.errors)
    warnings = len(report.problems) - errors
    files = len({q.path for q in report.queries})
    verdict = "OK" if not errors else "FAILED"
    out.append(
        f"vdata check {verdict}: {len(report.queries)} queries in {files} files under "
        f"{report.root}; {errors} error(s), {warnings} warning(s)"
    )
    return "\n".join(out)
