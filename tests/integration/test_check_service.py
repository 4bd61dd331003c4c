"""vdata check and explain on a service's own folders: --sql, --migrations, --module."""

from __future__ import annotations

import json
import secrets
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from vdata import cli
from vdata.check.checker import check
from vdata.check.explain import explain
from vdata.check.sources import Sources
from vdata.migrations import apply
from vdata.testing.admin import ident
from vdata.testing.providers import Server

CREATE = """\
-- Widgets: the service's one table.
-- depends:

CREATE TABLE widgets (
    id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    note text,
    CONSTRAINT pk_widgets PRIMARY KEY (id)
);
"""

RENAME = """\
-- A widget's name is its label from now on.
-- depends: 0001.create-widgets

ALTER TABLE widgets RENAME COLUMN name TO label;
"""

QUERIES = """\
-- name: get_widget(id)^
-- Return one widget by id, or nothing.
SELECT
    w.id,
    w.name,
    w.note
FROM widgets AS w
WHERE w.id = :id;

-- name: count_widgets()$
-- Return how many widgets there are.
SELECT count(*) FROM widgets AS w;
"""

MODULE = """\
from pathlib import Path

import msgspec

from vdata.queries import load_queries


class Widget(msgspec.Struct, frozen=True):
    id: int
    name: str
    note: str | None


Q = load_queries(Path(__file__).parent / "sql")
GET = Q.bind("widgets.get_widget", Widget)
COUNT = Q.bind("widgets.count_widgets", int)
"""


def _service(root: Path, *, renamed: bool) -> Path:
    """Write a service folder under *root*: sql/, migrations/ and a package binding Structs."""
    package = root / f"svc_{root.name.replace('-', '_')}"
    (package / "sql" / "widgets").mkdir(parents=True)
    (package / "sql" / "widgets" / "widgets.sql").write_text(QUERIES)
    (package / "__init__.py").write_text("")
    (package / "repos.py").write_text(MODULE)
    migrations = package / "migrations"
    migrations.mkdir()
    (migrations / "0001.create-widgets.sql").write_text(CREATE)
    (migrations / "0001.create-widgets.rollback.sql").write_text(
        "-- Drop the widgets.\n-- depends:\n\nDROP TABLE widgets;\n"
    )
    if renamed:
        (migrations / "0002.rename-widgets-name.sql").write_text(RENAME)
        (migrations / "0002.rename-widgets-name.rollback.sql").write_text(
            textwrap.dedent(RENAME).replace(
                "RENAME COLUMN name TO label", "RENAME COLUMN label TO name"
            )
        )
    return package


@pytest.fixture
def service_db(vdata_server: Server) -> Iterator[tuple[str, Server]]:
    """An empty database on the session's server (no bundled migrations); dropped after."""
    import psycopg

    name = f"svc_{secrets.token_hex(5)}"
    with psycopg.connect(vdata_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {ident(name)}".encode())
    try:
        yield vdata_server.dsn(name), vdata_server
    finally:
        with psycopg.connect(vdata_server.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {ident(name)} WITH (FORCE)".encode())


@pytest.fixture
def importable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """*tmp_path* as the working directory, its packages importable and forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("svc_"):
            del sys.modules[name]


async def test_a_service_folder_with_its_structs_is_clean(
    importable: Path, service_db: tuple[str, Server]
) -> None:
    package = _service(importable, renamed=False)
    dsn, _ = service_db
    apply(dsn, migrations=package / "migrations")
    sys.path.insert(0, str(importable))
    report = await check(dsn, Sources.of([package / "sql"], modules=[f"{package.name}.repos"]))
    assert not report.problems, report.to_text()
    structs = {q.name: q.struct for q in report.queries}
    assert structs == {"widgets.get_widget": "Widget", "widgets.count_widgets": "int"}


async def test_a_column_renamed_by_a_migration_fails_naming_the_query(
    importable: Path, service_db: tuple[str, Server]
) -> None:
    package = _service(importable, renamed=True)
    dsn, _ = service_db
    assert apply(dsn, migrations=package / "migrations") == [
        "0001.create-widgets",
        "0002.rename-widgets-name",
    ]
    sys.path.insert(0, str(importable))
    report = await check(dsn, Sources.of([package / "sql"], modules=[f"{package.name}.repos"]))
    (problem,) = report.errors
    assert problem.query == "widgets.get_widget" and problem.kind == "prepare"
    assert "42703" in problem.message and "w.name" in problem.message
    assert problem.path.endswith("widgets.sql") and problem.line == 1


def _cli_check(*args: str | Path) -> list[str]:
    return ["check", *(str(a) for a in args)]


@pytest.mark.slow
def test_cli_checks_sql_alone_on_a_throwaway_database_migrated_with_the_service(
    importable: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vdata.testing import pgserver

    try:
        pgserver.find_bindir("embedded")
    except pgserver.PgServerError as exc:
        pytest.skip(f"embedded PostgreSQL binaries unavailable: {exc}")
    monkeypatch.delenv("VDATA_DSN", raising=False)
    package = _service(importable, renamed=False)
    sql, migrations = package / "sql", package / "migrations"
    # SQL alone, no Python: both queries prepare, none is asked for a Struct
    assert cli.main(_cli_check("--sql", sql, "--migrations", migrations, "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert [q["name"] for q in data["queries"]] == ["widgets.count_widgets", "widgets.get_widget"]
    assert data["problems"] == []
    assert all(q["struct"] is None for q in data["queries"])
    # the rename lands in the service's folder: the same command now fails on the query
    (migrations / "0002.rename-widgets-name.sql").write_text(RENAME)
    (migrations / "0002.rename-widgets-name.rollback.sql").write_text(
        RENAME.replace("RENAME COLUMN name TO label", "RENAME COLUMN label TO name")
    )
    module = f"{package.name}.repos"
    assert cli.main(_cli_check("--sql", sql, "--migrations", migrations, "--module", module)) == 1
    captured = capsys.readouterr()
    assert "widgets.sql:1: widgets.get_widget [prepare] does not prepare: 42703" in captured.out
    assert "migrated with " + str(migrations) in captured.err
    assert "bundled" not in captured.err  # a service alone: vdata's tables are not there


def test_cli_refuses_a_migrations_folder_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VDATA_DSN", raising=False)
    sql = tmp_path / "sql"
    sql.mkdir()
    code = cli.main(_cli_check("--sql", sql, "--migrations", tmp_path / "nowhere"))
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


async def test_explain_plans_a_service_folder(
    importable: Path, service_db: tuple[str, Server]
) -> None:
    package = _service(importable, renamed=False)
    dsn, _ = service_db
    apply(dsn, migrations=package / "migrations")
    plans = explain(dsn, ["get_widget"], sources=Sources.of([package / "sql"]))
    (plan,) = plans
    assert plan.name == "widgets.get_widget" and plan.error is None
    assert plan.plan is not None and "widgets" in json.dumps(plan.plan)
