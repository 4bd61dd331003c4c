"""What ``vdata check`` found: the report, its findings, and its text and JSON forms."""

from __future__ import annotations

__all__ = ["Column", "Param", "Problem", "QueryReport", "Report", "format_text"]

from itertools import groupby

import msgspec


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One finding, located at a file and line."""

    path: str
    line: int
    query: str
    # load, duplicate, doc, params, prepare, param-type, shape, struct, columns,
    # types, nullability
    kind: str
    message: str
    severity: str = "error"  # or "warning" (reported, does not fail the check)


class Param(msgspec.Struct, frozen=True):
    """A parameter and the type the server inferred for it."""

    name: str
    type: str


class Column(msgspec.Struct, frozen=True):
    """A result column: its type, whether it can be NULL, and where it comes from."""

    name: str
    type: str
    nullable: bool
    origin: str | None  # ``schema.table.column`` or None for an expression
    why_nullable: str | None = None


class QueryReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the server said about one query."""

    name: str
    path: str
    line: int
    kind: str
    struct: str | None
    params: list[Param]
    columns: list[Column]


class Report(msgspec.Struct, kw_only=True):
    """The outcome of a check: every query looked at and every problem found."""

    root: str
    queries: list[QueryReport] = msgspec.field(default_factory=list)
    problems: list[Problem] = msgspec.field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Return the problems that fail the check."""
        return [p for p in self.problems if p.severity == "error"]

    def to_json(self) -> bytes:
        """Return the report as JSON (``vdata check --json``)."""
        return msgspec.json.format(msgspec.json.encode(self), indent=2)

    def to_text(self, *, verbose: bool = False) -> str:
        """Return the report for a person: problems grouped by file, then a summary."""
        return format_text(self, verbose=verbose)


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
