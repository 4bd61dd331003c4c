"""PostgreSQL types as asyncpg decodes them, matched against Struct annotations.

A row Struct is built positionally (``User(*record)``) and msgspec does not
convert or validate on ``__init__``: a field holds exactly the object asyncpg
decoded. So a column is compatible with a field when every class asyncpg can
return for it is an instance of (one member of) the field's annotation.
"""

from __future__ import annotations

__all__ = ["PgType", "annotation_text", "incompatibility", "is_optional", "resolve_types"]

import datetime
import decimal
import enum
import ipaddress
import types
import typing
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# What asyncpg 0.29+ returns for each built-in type (by ``typname``). json and
# jsonb come back as ``str``: vdata registers no JSON codec on its connections.
_RUNTIME: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int2": (int,),
    "int4": (int,),
    "int8": (int,),
    "oid": (int,),
    "float4": (float,),
    "float8": (float,),
    "numeric": (decimal.Decimal,),
    "money": (str,),
    "text": (str,),
    "varchar": (str,),
    "bpchar": (str,),
    "char": (str,),
    "name": (str,),
    "citext": (str,),
    "xml": (str,),
    "uuid": (uuid.UUID,),
    "timestamptz": (datetime.datetime,),
    "timestamp": (datetime.datetime,),
    "date": (datetime.date,),
    "time": (datetime.time,),
    "timetz": (datetime.time,),
    "interval": (datetime.timedelta,),
    "bytea": (bytes,),
    "json": (str,),
    "jsonb": (str,),
    "inet": (
        ipaddress.IPv4Address,
        ipaddress.IPv6Address,
        ipaddress.IPv4Interface,
        ipaddress.IPv6Interface,
    ),
    "cidr": (ipaddress.IPv4Network, ipaddress.IPv6Network),
    "macaddr": (str,),
}

# Hints for the mistakes people actually make, keyed by type name.
_HINTS = {
    "json": "asyncpg returns json as str (no JSON codec is registered)",
    "jsonb": "asyncpg returns jsonb as str (no JSON codec is registered)",
    "numeric": "asyncpg returns numeric as decimal.Decimal",
    "inet": "asyncpg returns inet as ipaddress.IPv4Address/IPv6Address (or *Interface)",
}

_CATALOG = """
SELECT t.oid, t.typname, n.nspname, t.typtype, t.typelem, t.typbasetype, t.typcategory
FROM pg_catalog.pg_type AS t
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
WHERE t.oid = ANY($1::oid[])
"""


@dataclass(frozen=True, slots=True)
class PgType:
    """A server type, with domains resolved to their base and arrays to their element."""

    oid: int
    name: str  # as ``format_type`` would show it, roughly: ``text``, ``uuid[]``
    base: str  # ``typname`` after resolving domains (``int4``, ``_text``)
    kind: str  # ``base``, ``array``, ``enum``, ``composite``, ``range``, ``other``
    element: PgType | None = None

    def runtime(self) -> tuple[type, ...] | None:
        """Return the classes asyncpg decodes this type to, or None if not known."""
        if self.kind == "enum":
            return (str,)
        if self.kind == "array":
            return (list,)
        return _RUNTIME.get(self.base)


async def resolve_types(conn: Any, oids: Iterable[int]) -> dict[int, PgType]:
    """Return every type in *oids*, resolved through the catalog of *conn* (asyncpg)."""
    rows: dict[int, Any] = {}
    todo = {int(o) for o in oids}
    while todo:
        fetched = await conn.fetch(_CATALOG, sorted(todo))
        for row in fetched:
            rows[int(row["oid"])] = row
        todo = {
            int(r[key])
            for r in fetched
            for key in ("typelem", "typbasetype")
            if int(r[key]) and int(r[key]) not in rows
        } - set(rows)

    def build(oid: int) -> PgType:
        row = rows.get(oid)
        if row is None:
            return PgType(oid, f"oid {oid}", "", "other")
        if row["typtype"] == "d":  # a domain decodes as its base type
            base = build(int(row["typbasetype"]))
            return PgType(oid, str(row["typname"]), base.base, base.kind, base.element)
        if row["typcategory"] == "A" and int(row["typelem"]):
            element = build(int(row["typelem"]))
            return PgType(oid, element.name + "[]", str(row["typname"]), "array", element)
        kind = {"b": "base", "e": "enum", "c": "composite", "r": "range"}.get(
            str(row["typtype"]), "other"
        )
        return PgType(oid, str(row["typname"]), str(row["typname"]), kind)

    return {oid: build(oid) for oid in rows}


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated``, ``NewType`` and type aliases down to the real type."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif hasattr(annotation, "__supertype__"):  # typing.NewType
            annotation = annotation.__supertype__
        elif hasattr(annotation, "__value__") and not isinstance(annotation, type):
            annotation = annotation.__value__  # PEP 695 ``type X = ...``
        else:
            return annotation


def _members(annotation: Any) -> list[Any]:
    """Return the members of a union (or the annotation alone), unwrapped."""
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_members(arg))
        return out
    return [annotation]


def is_optional(annotation: Any) -> bool:
    """Return True if the annotation admits None (``T | None``, ``Optional``, ``Any``)."""
    return any(m is type(None) or m is None or m is Any for m in _members(annotation))


def _accepts(member: Any, pg: PgType) -> bool:
    """Return True if a value of *pg*, as asyncpg decodes it, fits annotation *member*."""
    if member is Any or member is object:
        return True
    runtime = pg.runtime()
    if runtime is None:
        return True  # a type this check does not know: not judged
    origin = typing.get_origin(member)
    if origin is typing.Literal:
        values = typing.get_args(member)
        return all(isinstance(v, runtime) for v in values)
    if pg.kind == "array":
        if origin not in (list, Sequence, typing.Sequence) and member not in (list, Sequence):
            return False
        args = typing.get_args(member)
        if not args or pg.element is None:
            return True
        return any(m is type(None) or _accepts(m, pg.element) for m in _members(args[0]))
    target = origin or member
    if not isinstance(target, type):
        return False
    if issubclass(target, enum.Enum):
        return False  # asyncpg returns the plain value; Struct(*record) never converts it
    return any(issubclass(cls, target) for cls in runtime)


def incompatibility(pg: PgType, annotation: Any) -> str | None:
    """Return why a *pg* column cannot fill a field of *annotation*, or None if it can."""
    members = [m for m in _members(annotation) if m is not type(None) and m is not None]
    if not members or any(_accepts(m, pg) for m in members):
        return None
    runtime = pg.runtime() or ()
    got = " | ".join(cls.__name__ for cls in runtime)
    hint = _HINTS.get(pg.element.base if pg.element and pg.kind == "array" else pg.base)
    why = f"asyncpg returns {got}" if got else ""
    if any(isinstance(m, type) and issubclass(m, enum.Enum) for m in members):
        why = f"asyncpg returns {got}, and Struct(*record) does not convert it to an Enum"
    elif hint:
        why = hint
    return why


def annotation_text(annotation: Any) -> str:
    """Return an annotation as a person writes it (``datetime | None``)."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    text = repr(annotation)
    for prefix in ("typing.", "datetime.", "uuid.", "decimal.", "ipaddress."):
        text = text.replace(prefix, "")
    return text.replace("NoneType", "None")
