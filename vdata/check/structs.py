"""How a query's result columns differ from its row Struct, for ``vdata check``.

The Struct is built positionally (``Struct(*record)``), so the columns must
be its fields in order and count, each of a type asyncpg decodes into the
field's annotation, and a column that can be NULL needs an optional field.
"""

from __future__ import annotations

__all__ = ["compare_struct"]

import typing
from typing import Any

import msgspec

from vdata.check import pgtypes
from vdata.check.report import Column


def compare_struct(
    struct: type[Any],
    columns: list[Column],
    types: list[pgtypes.PgType | None],
    problem: typing.Callable[..., None],
) -> None:
    """Report how *columns* differ from the positional fields of *struct*."""
    sname = getattr(struct, "__name__", repr(struct))
    if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
        problem("columns", f"{sname} is not a msgspec Struct")
        return
    fields = list(struct.__struct_fields__)
    names = [c.name for c in columns]
    positional = list(getattr(struct, "__match_args__", fields))
    if positional != fields:
        kw = [f for f in fields if f not in positional]
        problem("columns", f"{sname} has keyword-only fields {kw}: {sname}(*record) fails")
    if names != fields:
        if sorted(names) == sorted(fields):
            problem(
                "columns",
                f"columns are in another order than {sname}'s fields:\n"
                f"  columns: {', '.join(names)}\n  fields:  {', '.join(fields)}",
            )
        else:
            missing = [f for f in fields if f not in names]
            extra = [n for n in names if n not in fields]
            what = []
            if missing:
                what.append(f"no column for field(s) {', '.join(missing)}")
            if extra:
                what.append(f"column(s) {', '.join(extra)} match no field")
            problem(
                "columns",
                f"{len(names)} columns for {len(fields)} fields of {sname}: " + "; ".join(what),
            )
    problem_lines: list[str] = []
    try:
        hints = typing.get_type_hints(struct, include_extras=True)
    except Exception as exc:  # an unresolvable forward reference
        problem("types", f"cannot read the annotations of {sname}: {exc}")
        return
    required_nullable: list[str] = []
    for column, pg in zip(columns, types, strict=True):
        if column.name not in hints or pg is None:
            continue
        annotation = hints[column.name]
        shown = pgtypes.annotation_text(annotation)
        why = pgtypes.incompatibility(pg, annotation)
        if why is not None:
            problem(
                "types",
                f"column {column.name} is {pg.name} but {sname}.{column.name} is {shown}: {why}",
            )
        if column.nullable and not pgtypes.is_optional(annotation):
            required_nullable.append(column.name)
            problem_lines.append(f"{column.name}: {column.why_nullable}; field is {shown}")
    if required_nullable:
        problem(
            "nullability",
            f"{len(required_nullable)} column(s) can be NULL but their {sname} fields "
            "are not optional (T | None):\n"
            + "\n".join(problem_lines)
            + "\nif they never are NULL, say so under the name line: -- not-null: "
            + ", ".join(required_nullable),
        )
