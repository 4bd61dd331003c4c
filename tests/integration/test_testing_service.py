"""The pytest plugin on a service's project: its migrations in the template, its areas on db/tx."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vdata.testing import pgserver

pytest_plugins = ["pytester"]

MIGRATION = """\
-- Widgets: the service's one table, and the service role's rights on it.
-- depends:

CREATE TABLE widgets (
    id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    CONSTRAINT pk_widgets PRIMARY KEY (id),
    CONSTRAINT unique_widgets_name UNIQUE (name)
);

GRANT SELECT, INSERT ON widgets TO vdata_app;
"""

QUERIES = """\
-- name: insert_widget(name)^
-- Create a widget; unique_widgets_name -> ConflictError.
INSERT INTO widgets (name) VALUES (:name)
RETURNING id, name;

-- name: get_widget(id)^
-- Return one widget by id, or nothing.
SELECT w.id, w.name FROM widgets AS w WHERE w.id = :id;

-- name: count_widgets()$
-- Return how many widgets there are.
SELECT count(*) FROM widgets AS w;
"""

REPOS = """\
from pathlib import Path

import msgspec

import vdata
from vdata.queries import load_queries


class Widget(msgspec.Struct, frozen=True):
    id: int
    name: str


Q = load_queries(Path(__file__).parent / "sql")
INSERT = Q.bind("widgets.insert_widget", Widget)
GET = Q.bind("widgets.get_widget", Widget)
COUNT = Q.bind("widgets.count_widgets", int)


class Widgets(vdata.Repository):
    async def create(self, name: str) -> Widget:
        return await self.one(INSERT, name)

    async def get(self, widget_id: int) -> Widget:
        return await self.one(GET, widget_id)

    async def count(self) -> int:
        return await self.value(COUNT)


AREAS = {"widgets": Widgets}
"""

TESTS = """\
import pytest

import vdata
from svc.repos import Widget


async def test_db_has_the_service_area(vdata_db):
    made = await vdata_db.widgets.create("gear")
    assert made == Widget(made.id, "gear")
    assert await vdata_db.widgets.get(made.id) == made
    with pytest.raises(vdata.ConflictError) as caught:
        await vdata_db.widgets.create("gear")
    assert caught.value.constraint == "unique_widgets_name"


async def test_tx_has_the_service_area_and_rolls_back(vdata_tx):
    await vdata_tx.widgets.create("cog")
    assert await vdata_tx.widgets.count() == 1


async def test_the_rolled_back_row_is_gone(vdata_tx):
    assert await vdata_tx.widgets.count() == 0


async def test_bundled_areas_follow_the_option(vdata_db, request):
    bundled = request.config.getini("vdata_bundled")
    assert hasattr(vdata_db, "users") is bundled
"""


def _project(pytester: pytest.Pytester, *, bundled: bool) -> None:
    """A service's project outside vdata's tests: svc/ with sql/, migrations/ and repos."""
    svc = pytester.mkpydir("svc")
    (svc / "sql" / "widgets").mkdir(parents=True)
    (svc / "sql" / "widgets" / "widgets.sql").write_text(QUERIES)
    (svc / "migrations").mkdir()
    (svc / "migrations" / "0001.create-widgets.sql").write_text(MIGRATION)
    (svc / "migrations" / "0001.create-widgets.rollback.sql").write_text(
        "-- Drop the widgets.\n-- depends:\n\nDROP TABLE widgets;\n"
    )
    (svc / "repos.py").write_text(REPOS)
    pytester.makeini(
        "[pytest]\n"
        "asyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "pythonpath = .\n"
        "vdata_migrations = svc/migrations\n"
        f"vdata_bundled = {'true' if bundled else 'false'}\n"
        "vdata_areas = svc.repos:AREAS\n"
    )
    pytester.makepyfile(test_service=TESTS)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> str:
    """Have the inner session start its own server (local, else embedded binaries)."""
    forced = os.environ.get("VDATA_TEST_PROVIDER", "")
    kind = forced if forced in ("local", "embedded") else "auto"
    try:
        real, _ = pgserver.find_bindir(kind)  # type: ignore[arg-type]
    except pgserver.Unavailable as exc:
        pytest.skip(f"no PostgreSQL binaries for the inner session: {exc}")
    monkeypatch.delenv("VDATA_TEST_DSN", raising=False)
    monkeypatch.setenv("VDATA_TEST_PROVIDER", real)
    return real


@pytest.mark.slow
@pytest.mark.parametrize("bundled", [False, True], ids=["service-alone", "with-bundled"])
def test_a_service_tests_its_own_areas_on_its_own_schema(
    pytester: pytest.Pytester, provider: str, bundled: bool
) -> None:
    _project(pytester, bundled=bundled)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            f"vdata: service migrations */svc/migrations; bundled {'yes' if bundled else 'no'}"
            "; areas svc.repos:AREAS",
        ]
    )


def test_a_missing_migrations_folder_on_the_command_line_is_a_usage_error(
    pytester: pytest.Pytester, provider: str, tmp_path: Path
) -> None:
    _project(pytester, bundled=False)
    missing = tmp_path / "nowhere"
    result = pytester.runpytest_subprocess("--vdata-migrations", str(missing))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*vdata_migrations: {missing} is not a folder of migrations*"])


def test_a_bad_areas_option_fails_the_tests_that_use_it(
    pytester: pytest.Pytester, provider: str
) -> None:
    _project(pytester, bundled=False)
    result = pytester.runpytest_subprocess("--vdata-areas", "svc.repos")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(["*vdata_areas = 'svc.repos': write MODULE:ATTRIBUTE*"])
