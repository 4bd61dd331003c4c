"""``vdata check``: the real queries pass, and every kind of drift is caught."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vdata import cli
from vdata._resources import sql_dir
from vdata.check.blocks import read_blocks
from vdata.check.checker import check
from vdata.check.report import Problem, Report
from vdata.check.sources import Sources
from vdata.queries import load_queries


class UserRow(msgspec.Struct, frozen=True):
    """The three columns every drift query below selects, in this order."""

    id: uuid.UUID
    username: str
    email_verified_at: dt.datetime | None


class UserRowRequired(msgspec.Struct, frozen=True):
    """Like UserRow, but claims a nullable column is never NULL."""

    id: uuid.UUID
    username: str
    email_verified_at: dt.datetime


class UserRowWrongType(msgspec.Struct, frozen=True):
    """Like UserRow, but with an integer id (the column is uuid)."""

    id: int
    username: str
    email_verified_at: dt.datetime | None


class LoginRow(msgspec.Struct, frozen=True):
    """inet as asyncpg returns it, and a count that is an expression."""

    last_login_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    n: int


class KwOnlyRow(msgspec.Struct, frozen=True, kw_only=True):
    """A Struct that cannot be built positionally."""

    id: uuid.UUID
    username: str
    email_verified_at: dt.datetime | None


class Color(enum.StrEnum):
    """A str enum: asyncpg still returns a plain str for the column."""

    RED = "red"


class JsonRow(msgspec.Struct, frozen=True):
    """A jsonb column read as a dict (asyncpg returns str) and a text as an Enum."""

    j: dict[str, Any]
    c: Color


GOOD = """
-- name: get_user(user_id)^
-- Return one user by id, or nothing.
SELECT
    u.id,
    u.username,
    u.email_verified_at
FROM app.users AS u
WHERE u.id = :user_id;
"""


def _sql_dir(tmp_path: Path, text: str) -> Path:
    """Write *text* as ``<tmp>/sql/drift/drift.sql``; return the root."""
    root = tmp_path / "sql"
    (root / "drift").mkdir(parents=True)
    (root / "drift" / "drift.sql").write_text(textwrap.dedent(text).lstrip())
    return root


async def _check(
    tmp_path: Path, dsn: str, text: str, structs: dict[str, type[Any]] | None = None
) -> Report:
    """Check *text* with each ``drift.<name>`` bound to its Struct (default: get_user→UserRow)."""
    root = _sql_dir(tmp_path, text)
    try:
        queries = load_queries(root)
    except Exception:
        queries = None  # the check reports why it does not load
    if queries is not None:
        for name, struct in ({"get_user": UserRow} if structs is None else structs).items():
            queries.bind(f"drift.{name}", struct)
    return await check(dsn, Sources.of([root]))


def _only(report: Report, kind: str) -> list[Problem]:
    return [p for p in report.problems if p.kind == kind]


def _kinds(report: Report) -> set[str]:
    return {p.kind for p in report.problems}


async def test_vdata_sql_passes_the_check_on_the_migrated_schema(vdata_dsn: str) -> None:
    report = await check(vdata_dsn)
    named = list(sql_dir().rglob("*.sql"))
    if any("-- name:" in p.read_text() for p in named):
        assert report.queries, "sql/ has named queries, yet none was checked"
    assert not report.errors, "\n" + report.to_text()
    names = {b.qualified for b in read_blocks(sql_dir())}
    assert {q.name for q in report.queries} == names  # every named query was prepared


async def test_a_matching_query_and_struct_is_clean(tmp_path: Path, vdata_dsn: str) -> None:
    report = await _check(tmp_path, vdata_dsn, GOOD)
    assert report.problems == []
    (q,) = report.queries
    assert [c.name for c in q.columns] == ["id", "username", "email_verified_at"]
    assert [c.nullable for c in q.columns] == [False, False, True]
    assert q.columns[0].origin == "app.users.id"
    assert [(p.name, p.type) for p in q.params] == [("user_id", "uuid")]


async def test_a_renamed_column_is_caught(tmp_path: Path, vdata_dsn: str) -> None:
    report = await _check(tmp_path, vdata_dsn, GOOD.replace("u.username,", "u.username AS login,"))
    (p,) = _only(report, "columns")
    assert "login match no field" in p.message
    assert "no column for field(s) username" in p.message
    assert p.path.endswith("drift.sql") and p.line == 1


async def test_a_reordered_select_list_is_caught(tmp_path: Path, vdata_dsn: str) -> None:
    text = GOOD.replace("    u.id,\n    u.username,", "    u.username,\n    u.id,")
    report = await _check(tmp_path, vdata_dsn, text)
    (p,) = _only(report, "columns")
    assert "another order" in p.message


async def test_a_missing_column_is_caught(tmp_path: Path, vdata_dsn: str) -> None:
    text = GOOD.replace("    u.username,\n", "    u.username\n").replace(
        "    u.email_verified_at\n", ""
    )
    report = await _check(tmp_path, vdata_dsn, text)
    (p,) = _only(report, "columns")
    assert "2 columns for 3 fields" in p.message


async def test_a_nullable_column_on_a_required_field_is_caught(
    tmp_path: Path, vdata_dsn: str
) -> None:
    report = await _check(tmp_path, vdata_dsn, GOOD, {"get_user": UserRowRequired})
    (p,) = _only(report, "nullability")
    assert "email_verified_at: app.users.email_verified_at is nullable" in p.message
    assert "-- not-null: email_verified_at" in p.message


async def test_an_outer_join_makes_a_not_null_column_nullable(
    tmp_path: Path, vdata_dsn: str
) -> None:
    text = """
    -- name: get_user(user_id)^
    -- Return a user and, maybe, another one.
    SELECT
        v.id,
        v.username,
        u.email_verified_at
    FROM app.users AS u
    LEFT JOIN app.users AS v ON v.id = u.id
    WHERE u.id = :user_id;
    """
    report = await _check(tmp_path, vdata_dsn, text)
    (p,) = _only(report, "nullability")
    assert "outer join" in p.message and "-- not-null: id, username" in p.message


async def test_a_column_read_through_a_view_is_as_not_null_as_its_table_column(
    tmp_path: Path, vdata_dsn: str
) -> None:
    # PostgreSQL reports the view's oid for these columns, and a view column is
    # never marked NOT NULL: the check follows app.user_rows to app.users.
    text = """
    -- name: get_user(user_id)^
    -- Return one user by id, through the projection view.
    SELECT
        u.id,
        u.username,
        u.email_verified_at
    FROM app.user_rows AS u
    WHERE u.id = :user_id;
    """
    report = await _check(tmp_path, vdata_dsn, text)
    assert report.problems == []
    (q,) = report.queries
    assert [c.origin for c in q.columns] == [
        "app.users.id",
        "app.users.username",
        "app.users.email_verified_at",
    ]
    report = await _check(tmp_path / "b", vdata_dsn, text, {"get_user": UserRowRequired})
    (p,) = _only(report, "nullability")
    assert "email_verified_at: app.users.email_verified_at is nullable" in p.message


async def test_a_view_with_an_outer_join_or_outer_joined_is_nullable(
    tmp_path: Path, vdata_dsn: str
) -> None:
    import asyncpg

    conn = await asyncpg.connect(vdata_dsn)
    try:
        await conn.execute(
            "CREATE VIEW app.user_pairs AS SELECT v.id, v.username, u.email_verified_at"
            " FROM app.users AS u LEFT JOIN app.users AS v ON v.id = u.id"
        )
    finally:
        await conn.close()
    inside = """
    -- name: get_user(user_id)^
    -- Return a user and, maybe, another one, from a view that outer-joins.
    SELECT
        p.id,
        p.username,
        p.email_verified_at
    FROM app.user_pairs AS p
    WHERE p.id = :user_id;
    """
    report = await _check(tmp_path, vdata_dsn, inside)
    (p,) = _only(report, "nullability")
    assert "-- not-null: id, username" in p.message
    outside = """
    -- name: get_user(user_id)^
    -- Return a user and, maybe, its row in the view.
    SELECT
        v.id,
        v.username,
        u.email_verified_at
    FROM app.users AS u
    LEFT JOIN app.user_rows AS v ON v.id = u.id
    WHERE u.id = :user_id;
    """
    report = await _check(tmp_path / "b", vdata_dsn, outside)
    (p,) = _only(report, "nullability")
    assert "-- not-null: id, username" in p.message


async def test_an_expression_is_nullable_unless_marked(tmp_path: Path, vdata_dsn: str) -> None:
    text = """
    -- name: get_login(user_id)^
    -- Return the last login address and a count.{mark}
    SELECT
        u.last_login_ip,
        count(*) OVER () AS n
    FROM app.users AS u
    WHERE u.id = :user_id;
    """
    report = await _check(tmp_path, vdata_dsn, text.format(mark=""), {"get_login": LoginRow})
    (p,) = _only(report, "nullability")
    assert "n: not a plain table column" in p.message
    marked = text.format(mark="\n    -- not-null: n")
    report = await _check(tmp_path / "b", vdata_dsn, marked, {"get_login": LoginRow})
    assert report.problems == []  # and the inet column fits IPv4Address | IPv6Address
    bad = marked.replace("-- not-null: n", "-- not-null: n, nn")
    report = await _check(tmp_path / "c", vdata_dsn, bad, {"get_login": LoginRow})
    (p,) = _only(report, "nullability")
    assert "`not-null: nn` names no result column" in p.message


async def test_a_wrong_type_is_caught(tmp_path: Path, vdata_dsn: str) -> None:
    report = await _check(tmp_path, vdata_dsn, GOOD, {"get_user": UserRowWrongType})
    (p,) = _only(report, "types")
    assert "column id is uuid but UserRowWrongType.id is int" in p.message


async def test_jsonb_is_str_and_text_is_not_an_enum(tmp_path: Path, vdata_dsn: str) -> None:
    text = """
    -- name: get_json()^
    -- Return a jsonb object and a text.
    -- not-null: j, c
    SELECT
        '{}'::jsonb AS j,
        'red'::text AS c;
    """
    report = await _check(tmp_path, vdata_dsn, text, {"get_json": JsonRow})
    messages = " / ".join(p.message for p in _only(report, "types"))
    assert "returns jsonb as str" in messages
    assert "does not convert it to an Enum" in messages


async def test_a_kw_only_struct_is_caught(tmp_path: Path, vdata_dsn: str) -> None:
    report = await _check(tmp_path, vdata_dsn, GOOD, {"get_user": KwOnlyRow})
    (p,) = _only(report, "columns")
    assert "keyword-only" in p.message


async def test_an_undeclared_parameter_is_caught_and_the_rest_still_checked(
    tmp_path: Path, vdata_dsn: str
) -> None:
    text = (
        GOOD
        + """
    -- name: list_users_by_name(name)
    -- Return users by name.
    SELECT u.id FROM app.users AS u WHERE u.username = :name AND u.email = :email;
    """
    )
    report = await _check(tmp_path, vdata_dsn, textwrap.dedent(text))
    (p,) = _only(report, "params")
    lines = (tmp_path / "sql/drift/drift.sql").read_text().splitlines()
    assert p.query == "drift.list_users_by_name"
    assert lines[p.line - 1].strip() == "-- name: list_users_by_name(name)"
    assert "undeclared parameter(s) :email" in p.message
    assert "load" in _kinds(report)  # aiosql refuses the folder...
    assert [q.name for q in report.queries] == ["drift.get_user"]  # ...the rest is checked


async def test_an_unused_declared_parameter_is_caught(tmp_path: Path, vdata_dsn: str) -> None:
    report = await _check(tmp_path, vdata_dsn, GOOD.replace("(user_id)", "(user_id, extra)"))
    assert any("never used: extra" in p.message for p in _only(report, "params"))


async def test_a_missing_doc_comment_is_caught(tmp_path: Path, vdata_dsn: str) -> None:
    report = await _check(
        tmp_path, vdata_dsn, GOOD.replace("-- Return one user by id, or nothing.\n", "")
    )
    (p,) = _only(report, "doc")
    assert p.query == "drift.get_user"


async def test_a_duplicate_name_is_caught_with_both_places(tmp_path: Path, vdata_dsn: str) -> None:
    root = _sql_dir(tmp_path, GOOD)
    (root / "drift" / "more.sql").write_text(GOOD.lstrip())
    load_queries(root).bind("drift.get_user", UserRow)
    report = await check(vdata_dsn, Sources.of([root]))
    (p,) = _only(report, "duplicate")
    assert "already used at" in p.message and "drift.sql:1" in p.message
    assert p.path.endswith("more.sql")


async def test_sql_that_does_not_prepare_is_caught(tmp_path: Path, vdata_dsn: str) -> None:
    report = await _check(tmp_path, vdata_dsn, GOOD.replace("u.username", "u.user_name"))
    (p,) = _only(report, "prepare")
    assert "42703" in p.message and "user_name" in p.message


async def test_rows_without_a_struct_and_bad_shapes_are_caught(
    tmp_path: Path, vdata_dsn: str
) -> None:
    text = (
        GOOD
        + """
    -- name: count_users()$
    -- Return two numbers, which a `$` query cannot.
    SELECT 1 AS a, 2 AS b;

    -- name: touch_user(user_id)^
    -- Return nothing although it says ^.
    UPDATE app.users SET full_name = full_name WHERE id = :user_id;
    """
    )
    report = await _check(tmp_path, vdata_dsn, textwrap.dedent(text), {"count_users": int})
    shapes = sorted(p.query for p in _only(report, "shape"))
    assert shapes == ["drift.count_users", "drift.touch_user"]
    # the folder binds Structs, so a row query left unbound is worth a warning
    (p,) = _only(report, "struct")
    assert p.query == "drift.get_user" and p.severity == "warning"


async def test_sql_alone_is_prepared_and_never_asked_for_structs(
    tmp_path: Path, vdata_dsn: str
) -> None:
    report = await _check(tmp_path, vdata_dsn, GOOD, {})
    assert [q.name for q in report.queries] == ["drift.get_user"]
    assert report.queries[0].struct is None
    assert not report.problems, report.to_text()


async def test_a_value_query_bound_to_the_wrong_scalar_type_is_caught(
    tmp_path: Path, vdata_dsn: str
) -> None:
    text = "-- name: count_users()$\n-- Count users.\nSELECT count(*) FROM app.users;\n"
    assert not (await _check(tmp_path / "a", vdata_dsn, text, {"count_users": int})).problems
    report = await _check(tmp_path / "b", vdata_dsn, text, {"count_users": str})
    (p,) = _only(report, "types")
    assert p.query == "drift.count_users" and "int8 but bound to str" in p.message


async def test_a_text_parameter_named_like_a_number_warns(tmp_path: Path, vdata_dsn: str) -> None:
    text = """
    -- name: get_user(user_id, page_limit)^
    -- Return one user; the limit is left untyped on purpose.
    SELECT
        u.id,
        u.username,
        u.email_verified_at
    FROM app.users AS u
    WHERE u.id = :user_id AND u.username <> :page_limit;
    """
    report = await _check(tmp_path, vdata_dsn, text)
    (p,) = _only(report, "param-type")
    assert p.severity == "warning" and ":page_limit is inferred as text" in p.message
    assert not report.errors


def test_cli_prints_problems_by_file_and_exits_1(
    tmp_path: Path, vdata_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _sql_dir(tmp_path, GOOD.replace("-- Return one user by id, or nothing.\n", ""))
    assert cli.main(["check", "--dsn", vdata_dsn, "--sql", str(root)]) == 1
    out = capsys.readouterr().out
    assert "drift.sql:1: drift.get_user [doc]" in out
    assert "[struct]" not in out  # SQL alone: no Struct is asked for
    assert "vdata check FAILED: 1 queries" in out
    assert cli.main(["check", "--dsn", vdata_dsn, "--sql", str(root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {p["kind"] for p in data["problems"]} == {"doc"}
    assert data["queries"][0]["params"] == [{"name": "user_id", "type": "uuid"}]


def test_cli_exits_0_when_clean(
    tmp_path: Path, vdata_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _sql_dir(tmp_path, "-- name: now()$\n-- Return the server's time.\nSELECT now();\n")
    assert cli.main(["check", "--dsn", vdata_dsn, "--sql", str(root)]) == 0
    assert "vdata check OK: 1 queries" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_without_a_dsn_checks_on_a_throwaway_embedded_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vdata.testing import pgserver

    try:
        pgserver.find_bindir("embedded")
    except pgserver.PgServerError as exc:
        pytest.skip(f"embedded PostgreSQL binaries unavailable: {exc}")
    monkeypatch.delenv("VDATA_DSN", raising=False)
    root = _sql_dir(
        tmp_path, "-- name: count_users()$\n-- Count users.\nSELECT count(*) FROM app.users;\n"
    )
    # a folder of its own gets the bundled tables only when it asks for them
    assert cli.main(["check", "--sql", str(root)]) == 1
    assert "42P01" in capsys.readouterr().out  # app.users does not exist
    assert cli.main(["check", "--sql", str(root), "--bundled"]) == 0
    captured = capsys.readouterr()
    assert "throwaway PostgreSQL" in captured.err
    assert "vdata check OK: 1 queries" in captured.out


def test_cli_exits_2_when_the_database_cannot_be_reached(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["check", "--dsn", "postgresql://postgres@127.0.0.1:1/none"]) == 2
    assert "cannot connect" in capsys.readouterr().err
