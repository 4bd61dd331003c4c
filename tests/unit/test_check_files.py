"""vdata check without a server: parsing name blocks, parameters, and type rules."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import ipaddress
import textwrap
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, NewType

import msgspec
import pytest

from vdata.check.blocks import read_blocks, used_params
from vdata.check.files import static_problems
from vdata.check.nullable import not_null_marks
from vdata.check.pgtypes import PgType, incompatibility, is_optional

UserId = NewType("UserId", uuid.UUID)


class Mood(enum.Enum):
    """An Enum: asyncpg never returns one."""

    HAPPY = "happy"


def test_used_params_skip_casts_strings_comments_and_dollar_quotes() -> None:
    sql = """
        SELECT :a::text, ':b', "c:d", $$ :e $$, $x$ :f $x$ -- :g
        /* :h */ FROM t WHERE x = :i AND y::int = :a AND z = ARRAY[:j]
    """
    assert used_params(sql) == ["a", "i", "j"]


def test_blocks_carry_line_namespace_doc_and_declared_params(tmp_path: Path) -> None:
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "users.sql").write_text(
        textwrap.dedent(
            """
            -- name: get_user(user_id)^
            -- Return one user.
            -- not-null: n
            SELECT 1 AS n WHERE :user_id::uuid IS NOT NULL;

            -- name: list-users
            SELECT 1;
            """
        )
    )
    first, second = read_blocks(tmp_path)
    assert (first.qualified, first.line, first.suffix) == ("users.get_user", 2, "^")
    assert first.declared == ("user_id",) and first.doc == ("Return one user.", "not-null: n")
    assert (second.name, second.declared, second.doc) == ("list_users", None, ())
    kinds = sorted(p.kind for p in static_problems([first, second]))
    assert kinds == ["doc", "params"]  # list_users: no doc, no parameter list


@pytest.mark.parametrize("marker", ["not-null: x", "seqscan-ok: nightly"])
def test_a_marker_line_alone_is_no_doc_comment(tmp_path: Path, marker: str) -> None:
    (tmp_path / "a.sql").write_text(f"-- name: f()$\n-- {marker}\nSELECT 1 AS x;\n")
    (problem,) = static_problems(read_blocks(tmp_path))
    assert problem.kind == "doc"


def test_not_null_marks_read_every_line() -> None:
    doc = "Return things.\nnot-null: a, b\n-- NOT-NULL: c d"
    assert not_null_marks(doc) == {"a", "b", "c", "d"}


def _t(base: str, kind: str = "base") -> PgType:
    return PgType(0, base, base, kind)


@pytest.mark.parametrize(
    ("pg", "annotation"),
    [
        (_t("uuid"), uuid.UUID),
        (_t("uuid"), UserId),
        (_t("int8"), Annotated[int, msgspec.Meta(ge=0)]),
        (_t("timestamptz"), dt.datetime | None),
        (_t("text"), Literal["a", "b"]),
        (_t("numeric"), decimal.Decimal),
        (_t("inet"), ipaddress.IPv4Address | ipaddress.IPv6Address),
        (_t("jsonb"), str),
        (_t("mood", "enum"), str),
        (PgType(0, "text[]", "_text", "array", _t("text")), list[str]),
        (_t("int4"), Any),
        (_t("tsvector", "other"), int),  # unknown types are not judged
    ],
)
def test_compatible_annotations(pg: PgType, annotation: Any) -> None:
    assert incompatibility(pg, annotation) is None


@pytest.mark.parametrize(
    ("pg", "annotation", "why"),
    [
        (_t("uuid"), str, "asyncpg returns UUID"),
        (_t("int4"), bool, "asyncpg returns int"),
        (_t("numeric"), float, "decimal.Decimal"),
        (_t("jsonb"), dict[str, Any], "jsonb as str"),
        (_t("text"), Mood, "does not convert it to an Enum"),
        (_t("date"), dt.datetime, "asyncpg returns date"),
        (PgType(0, "text[]", "_text", "array", _t("text")), list[int], ""),
        (_t("inet"), str, "ipaddress"),
    ],
)
def test_incompatible_annotations(pg: PgType, annotation: Any, why: str) -> None:
    message = incompatibility(pg, annotation)
    assert message is not None and why in message


def test_optional_means_none_or_any() -> None:
    assert is_optional(int | None) and is_optional(Any)
    assert is_optional(Annotated[str | None, msgspec.Meta(max_length=3)])
    assert not is_optional(int) and not is_optional(list[int | None])
