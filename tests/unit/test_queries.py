"""The query loader: parameters in SQL order, kinds, read-only detection, Struct ties."""

from __future__ import annotations

from pathlib import Path

import aiosql
import msgspec
import pytest

from vdata.queries import Queries, QueryKind, all_queries, load


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "sql" / "things"
    folder.mkdir(parents=True)
    (folder / "things.sql").write_text(text)
    return tmp_path / "sql"


SQL = """
-- name: get_thing(id)^
-- Return one thing.
SELECT t.id, t.name FROM things AS t WHERE t.id = :id;

-- name: rename_thing(name, id)^
-- Rename; uses :id twice to show that a name maps to one $n.
UPDATE things SET name = :name WHERE id = :id AND :id > 0 RETURNING id, name;

-- name: count_things()$
-- Count.
SELECT count(*) FROM things;

-- name: delete_thing(id)!
-- Delete.
DELETE FROM things WHERE id = :id;

-- name: list_things(after_id)
-- List, locking.
SELECT t.id, t.name FROM things AS t WHERE t.id > :after_id FOR UPDATE;
"""


def test_parameters_follow_the_sql_and_repeat_as_one_placeholder(tmp_path: Path) -> None:
    queries = Queries(write(tmp_path, SQL))
    rename = queries["things.rename_thing"]
    assert rename.params == ("name", "id")
    assert "$1" in rename.sql and "$2" in rename.sql and "$3" not in rename.sql
    assert rename.bind({"id": 5, "name": "x"}) == ("x", 5)


def test_kinds_and_read_only(tmp_path: Path) -> None:
    queries = Queries(write(tmp_path, SQL))
    assert queries["things.get_thing"].kind is QueryKind.ONE
    assert queries["things.count_things"].kind is QueryKind.VALUE
    assert queries["things.delete_thing"].kind is QueryKind.EXECUTE
    assert queries["things.list_things"].kind is QueryKind.MANY
    assert queries["things.get_thing"].read_only
    assert queries["things.list_things"].read_only
    assert not queries["things.rename_thing"].read_only
    assert not queries["things.delete_thing"].read_only


def test_doc_file_and_line_are_kept(tmp_path: Path) -> None:
    queries = Queries(write(tmp_path, SQL))
    get = queries["things.get_thing"]
    assert get.doc == "Return one thing."
    assert get.path.name == "things.sql"
    assert get.line > 0


def test_bind_refuses_missing_and_unexpected_names_without_values(tmp_path: Path) -> None:
    get = Queries(write(tmp_path, SQL))["things.get_thing"]
    with pytest.raises(TypeError) as caught:
        get.bind({"idd": "s3cret"})
    assert "idd" in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(TypeError):
        get.bind({})


def test_declared_parameters_must_match_the_sql(tmp_path: Path) -> None:
    undeclared = "-- name: get_thing(id)^\n-- Doc.\nSELECT :other AS x;\n"
    with pytest.raises(aiosql.SQLParseException, match="undeclared parameter"):
        Queries(write(tmp_path, undeclared))


def test_a_declared_but_unused_parameter_is_refused(tmp_path: Path) -> None:
    unused = "-- name: get_thing(id, extra)^\n-- Doc.\nSELECT :id AS x;\n"
    with pytest.raises(aiosql.SQLParseException, match="unused declared parameter"):
        Queries(write(tmp_path, unused))


def test_unknown_name_is_a_clear_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no query named"):
        Queries(write(tmp_path, SQL))["things.nope"]


def test_vdata_queries_load_once_and_every_query_is_documented() -> None:
    assert load() is load()
    queries = all_queries()
    assert len(queries) > 0
    undocumented = [q.name for q in queries if not q.doc]
    assert undocumented == []


def test_a_query_maps_to_one_struct_only(tmp_path: Path) -> None:
    from vdata import queries as module

    class A(msgspec.Struct):
        id: int

    class B(msgspec.Struct):
        id: int

    root = write(tmp_path, SQL)
    loaded = module.Queries(root)
    q = loaded["things.get_thing"]
    q.struct = A
    # query() refuses a second, different Struct for the same query.
    original = module.load
    module.load = lambda root=None: loaded  # type: ignore[assignment]
    try:
        assert module.query("things.get_thing", A) is q
        with pytest.raises(ValueError, match="already maps to A"):
            module.query("things.get_thing", B)
    finally:
        module.load = original
