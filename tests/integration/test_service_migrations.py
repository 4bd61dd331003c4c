"""A service's own migrations folder beside vdata's bundled one, on a real PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

import vdata
from tests.integration._migrate_race import race_two_runs
from vdata import migrations
from vdata._resources import migrations_dir
from vdata.cli import main

pytestmark = pytest.mark.integration

IDS = sorted(p.stem for p in migrations_dir().glob("*.sql") if ".rollback" not in p.name)
# 0002.create-users is also a bundled id: sources are tracked apart, so the
# same id in two folders is two migrations.
SHOP_IDS = ["0001.create-widgets", "0002.create-users"]
_SHOP_FILES = {
    "0001.create-widgets.sql": """-- The widgets the shop sells (unqualified: on the search path).

CREATE TABLE widgets (
    id bigint GENERATED ALWAYS AS IDENTITY,
    name text NOT NULL,
    CONSTRAINT pk_widgets PRIMARY KEY (id)
);
""",
    "0001.create-widgets.rollback.sql": "DROP TABLE widgets;\n",
    "0002.create-users.sql": """-- The shop's own customers, apart from vdata's app.users.
-- depends: 0001.create-widgets

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY,
    email text NOT NULL,
    CONSTRAINT pk_users PRIMARY KEY (id)
);
""",
    "0002.create-users.rollback.sql": "DROP TABLE users;\n",
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A service's migrations folder, ``.../shop/migrations`` (source name ``shop``)."""
    folder = tmp_path / "shop" / "migrations"
    folder.mkdir(parents=True)
    for name, text in _SHOP_FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def states(dsn: str, folder: Path | None = None) -> list[tuple[str, str]]:
    return [(s.id, s.state) for s in migrations.status(dsn, migrations=folder)]


def regclass(dsn: str, name: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass(%s)::text", (name,)).fetchone()
    return row[0] if row else None


@pytest.mark.parametrize("bundled_first", [True, False], ids=["bundled-first", "service-first"])
def test_a_service_folder_and_the_bundled_one_never_block_each_other(
    empty_dsn: str, shop: Path, bundled_first: bool
) -> None:
    runs: list[Callable[[], list[str]]] = [
        lambda: migrations.apply(empty_dsn),
        lambda: migrations.apply(empty_dsn, migrations=shop),
    ]
    expected = [IDS, SHOP_IDS]
    if not bundled_first:
        runs.reverse()
        expected.reverse()
    assert [run() for run in runs] == expected
    assert [run() for run in runs] == [[], []]  # each source: nothing left to do

    # Each status lists its own folder only: no "missing" ids from the other.
    assert states(empty_dsn) == [(mid, "applied") for mid in IDS]
    assert states(empty_dsn, shop) == [(mid, "applied") for mid in SHOP_IDS]
    with psycopg.connect(empty_dsn) as conn:
        shop_rows = conn.execute(
            "SELECT migration_id FROM vdata_migrations_shop._yoyo_migration ORDER BY 1"
        ).fetchall()
        bundled_rows = conn.execute(
            "SELECT count(*) FROM vdata_migrations._yoyo_migration"
        ).fetchone()
    assert [r[0] for r in shop_rows] == SHOP_IDS
    assert bundled_rows == (len(IDS),)

    # Rolling the service back touches only the service's tables.
    assert migrations.rollback(empty_dsn, 2, migrations=shop) == SHOP_IDS[::-1]
    assert regclass(empty_dsn, "public.widgets") is None
    assert regclass(empty_dsn, "app.users") == "app.users"
    assert states(empty_dsn) == [(mid, "applied") for mid in IDS]
    assert states(empty_dsn, shop) == [(mid, "pending") for mid in SHOP_IDS]

    assert migrations.apply(empty_dsn, migrations=shop) == SHOP_IDS
    # And rolling every bundled migration back leaves the service's alone.
    assert migrations.rollback(empty_dsn, len(IDS)) == IDS[::-1]
    assert regclass(empty_dsn, "app.users") is None
    assert regclass(empty_dsn, "public.users") == "users"
    assert states(empty_dsn, shop) == [(mid, "applied") for mid in SHOP_IDS]
    assert migrations.apply(empty_dsn) == IDS


def test_an_unqualified_create_table_lands_on_the_services_search_path(
    empty_dsn: str, shop: Path
) -> None:
    migrations.apply(empty_dsn, migrations=shop)
    assert regclass(empty_dsn, "public.widgets") == "widgets"
    with psycopg.connect(empty_dsn) as conn:  # a normal connection, no search_path set
        conn.execute("INSERT INTO widgets (name) VALUES ('sprocket')")
        assert conn.execute("SELECT name FROM widgets").fetchall() == [("sprocket",)]
        leaked = conn.execute(
            "SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname LIKE 'vdata\\_migrations%%' AND c.relname IN ('widgets', 'users')"
        ).fetchone()
    assert leaked == (0,)


def test_the_dsns_own_search_path_is_the_one_migrations_use(empty_dsn: str, shop: Path) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shop")
    dsn = f"{empty_dsn}?options={quote('-c search_path=shop')}"
    assert migrations.apply(dsn, migrations=shop) == SHOP_IDS
    assert regclass(empty_dsn, "shop.widgets") == "shop.widgets"
    assert regclass(empty_dsn, "public.widgets") is None
    assert migrations.rollback(dsn, 2, migrations=shop) == SHOP_IDS[::-1]
    assert regclass(empty_dsn, "shop.widgets") is None


def test_the_source_name_not_the_path_identifies_a_folder(
    empty_dsn: str, shop: Path, tmp_path: Path
) -> None:
    migrations.apply(empty_dsn, migrations=shop)
    deployed = shutil.copytree(shop, tmp_path / "app" / "migrations")  # another checkout
    # Under its default name ("app") the copy is another source, not yet applied,
    # and applying it there is refused: its files were applied as "shop".
    assert states(empty_dsn, deployed) == [(mid, "pending") for mid in SHOP_IDS]
    with pytest.raises(
        migrations.MigrationError, match=r"applied as the source 'shop'.*--source shop"
    ):
        migrations.apply(empty_dsn, migrations=deployed)
    assert states(empty_dsn, deployed) == [(mid, "pending") for mid in SHOP_IDS]
    # ...and under the name it was applied with, it is the same one.
    assert migrations.apply(empty_dsn, migrations=deployed, source="shop") == []
    listed = migrations.status(empty_dsn, migrations=deployed, source="shop")
    assert [(s.id, s.state) for s in listed] == [(mid, "applied") for mid in SHOP_IDS]
    with pytest.raises(migrations.MigrationError, match="cannot name the source"):
        migrations.apply(empty_dsn, migrations=shop, source="Bad-Name")


def test_two_concurrent_service_runs_apply_each_migration_once(empty_dsn: str, shop: Path) -> None:
    results = race_two_runs(empty_dsn, "--migrations", str(shop))
    assert [code for code, _, _ in results] == [0, 0], results
    reported = sorted(line.strip() for _, out, _ in results for line in out.splitlines()[1:])
    assert reported == SHOP_IDS
    with psycopg.connect(empty_dsn) as conn:
        log = conn.execute(
            "SELECT migration_id, operation FROM vdata_migrations_shop._yoyo_log"
            " ORDER BY created_at_utc"
        ).fetchall()
    assert log == [(mid, "apply") for mid in SHOP_IDS]


def test_an_edited_applied_service_migration_is_refused(empty_dsn: str, shop: Path) -> None:
    migrations.apply(empty_dsn, migrations=shop)
    edited = shop / "0001.create-widgets.sql"
    edited.write_text(edited.read_text() + "\nALTER TABLE widgets ADD COLUMN colour text;\n")
    with pytest.raises(migrations.MigrationChangedError) as info:
        migrations.apply(empty_dsn, migrations=shop)
    assert info.value.path == edited
    assert dict(states(empty_dsn, shop))["0001.create-widgets"] == "changed"
    # The bundled source is not affected by the service's edit.
    assert migrations.apply(empty_dsn) == IDS


def test_a_depends_outside_the_folder_is_refused(empty_dsn: str, shop: Path) -> None:
    (shop / "0003.add-widgets-owner.sql").write_text(
        "-- test\n-- depends: 0002.create-users 0001.create-schema-app\n\nSELECT 1;\n"
    )
    migrations.apply(empty_dsn)  # the bundled ids are known to this process now
    with pytest.raises(migrations.MigrationError, match=r"0003\.add-widgets-owner depends on"):
        migrations.apply(empty_dsn, migrations=shop)
    assert states(empty_dsn, shop)[0] == ("0001.create-widgets", "pending")


def test_cli_runs_the_bundled_then_each_folder_and_status_lists_both(
    empty_dsn: str, shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = ["--dsn", empty_dsn, "--bundled", "--migrations", str(shop)]
    assert main(["migrate", *both]) == 0
    out = capsys.readouterr().out
    assert f"applied {len(IDS)} migration(s) (vdata's bundled migrations)" in out
    assert f"applied 2 migration(s) from {shop}" in out
    assert main(["migrate", "status", *both]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == "# (vdata's bundled migrations)"
    assert listed[len(IDS) + 1] == f"# from {shop}"
    assert [line.split()[:2] for line in listed[len(IDS) + 2 :]] == [
        ["applied", mid] for mid in SHOP_IDS
    ]
    # rollback works on one source at a time
    assert main(["migrate", "rollback", *both]) == 2
    assert "one source" in capsys.readouterr().err
    assert main(["migrate", "rollback", "--dsn", empty_dsn, "--migrations", str(shop)]) == 0
    assert states(empty_dsn, shop)[-1] == ("0002.create-users", "pending")


def test_new_refuses_without_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["migrate", "new", "add-widgets"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--migrations DIR" in err
    assert list(tmp_path.iterdir()) == []
    assert not list(migrations_dir().glob("*add-widgets*"))


def test_new_numbers_after_the_folders_highest(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / "0007.add-widgets-price.sql").write_text("-- test\n-- depends: 0002.create-users\n")
    assert main(["migrate", "new", "add-widgets-colour", "--migrations", str(shop)]) == 0
    assert capsys.readouterr().out.split() == [
        "created",
        str(shop / "0008.add-widgets-colour.sql"),
        "created",
        str(shop / "0008.add-widgets-colour.rollback.sql"),
    ]
    text = (shop / "0008.add-widgets-colour.sql").read_text()
    assert "-- depends: 0007.add-widgets-price" in text
    # An empty folder starts at 0001, depending on nothing.
    empty = shop.parent / "other"
    empty.mkdir()
    path, _ = migrations.new("create-gadgets", migrations=empty)
    assert path.name == "0001.create-gadgets.sql"
    assert "depends" not in path.read_text()


def test_new_refuses_a_folder_inside_the_installed_package(tmp_path: Path) -> None:
    inside = Path(vdata.__file__).resolve().parent / "models"
    before = sorted(inside.iterdir())
    with pytest.raises(migrations.MigrationError, match="inside the installed vdata package"):
        migrations.new("add-widgets", migrations=inside)
    assert sorted(inside.iterdir()) == before
