"""The query loader: parameters in SQL order, kinds, read-only detection, Struct ties."""

from __future__ import annotations

from pathlib import Path

import aiosql
import msgspec
import pytest

from vdata.queries import Queries, QueryKind, load, load_queries


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
    assert list(rename.arguments((), {"id": 5, "name": "x"})) == ["x", 5]


def test_positional_arguments_follow_the_declared_signature(tmp_path: Path) -> None:
    # Declared id first; the SQL numbers name $1.
    sql = (
        "-- name: rename_thing(id, name)!\n-- R.\nUPDATE things SET name = :name WHERE id = :id;\n"
    )
    rename = Queries(write(tmp_path, sql))["things.rename_thing"]
    assert rename.declared == ("id", "name") and rename.params == ("name", "id")
    assert list(rename.arguments((5, "x"), {})) == ["x", 5]
    with pytest.raises(TypeError, match="takes 2 arguments"):
        rename.arguments((5,), {})
    with pytest.raises(TypeError, match="not both"):
        rename.arguments((5,), {"name": "x"})


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
        get.arguments((), {"idd": "s3cret"})
    assert "idd" in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(TypeError):
        get.arguments((), {"id": 1, "extra": 2})


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
    queries = load()
    assert len(queries) > 0
    undocumented = [q.name for q in queries if not q.doc]
    assert undocumented == []


def test_bind_returns_a_typed_copy_and_records_it(tmp_path: Path) -> None:
    class Thing(msgspec.Struct):
        id: int
        name: str

    loaded = Queries(write(tmp_path, SQL))
    untyped = loaded["things.get_thing"]
    typed = loaded.bind("things.get_thing", Thing)
    assert typed is not untyped
    assert typed.struct is Thing and untyped.struct is None
    assert typed.sql == untyped.sql and typed.params == untyped.params
    assert typed.entity == "thing"
    assert loaded.bind("things.get_thing", Thing) is typed  # same binding: same object
    assert [q.name for q in loaded.bound()] == ["things.get_thing"]
    # Iterating yields the bound version where one was declared.
    by_name = {q.name: q for q in loaded}
    assert by_name["things.get_thing"] is typed
    assert by_name["things.list_things"].struct is None


def test_a_query_binds_to_one_type_only(tmp_path: Path) -> None:
    class A(msgspec.Struct):
        id: int

    class B(msgspec.Struct):
        id: int

    loaded = Queries(write(tmp_path, SQL))
    loaded.bind("things.get_thing", A)
    with pytest.raises(ValueError, match="already bound"):
        loaded.bind("things.get_thing", B)


def test_entity_defaults_to_the_struct_name_in_words(tmp_path: Path) -> None:
    class ApiThing(msgspec.Struct):
        id: int

    loaded = Queries(write(tmp_path, SQL))
    assert loaded.bind("things.get_thing", ApiThing).entity == "api thing"
    assert loaded.bind("things.list_things", ApiThing, entity="widget").entity == "widget"


def test_load_queries_loads_a_folder_once(tmp_path: Path) -> None:
    root = write(tmp_path, SQL)
    assert load_queries(root) is load_queries(str(root))
    assert load_queries(root) is not load()
