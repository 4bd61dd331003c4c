"""The migration runner on a real PostgreSQL: round trips, catalog snapshots, locking."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.integration._migrate_race import race_two_runs
from vdata import migrations
from vdata._resources import migrations_dir

pytestmark = pytest.mark.integration

IDS = sorted(p.stem for p in migrations_dir().glob("*.sql") if ".rollback" not in p.name)

# One row per object, keyed by schema-qualified names, never by OID: two
# states of the same database compare equal exactly when their catalogs do.
# The runner's bookkeeping schemas (vdata_migrations, vdata_migrations_<source>)
# are the only ones left out.
_SCOPE = """
    n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'vdata\\_migrations%%'
    AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
"""
_ACL = "(SELECT array_agg(a::text ORDER BY a::text) FROM unnest({}) AS a)"
SNAPSHOT_QUERIES = {
    "pg_namespace": f"""
        SELECT n.nspname, pg_get_userbyid(n.nspowner), {_ACL.format("n.nspacl")},
            obj_description(n.oid, 'pg_namespace')
        FROM pg_namespace AS n WHERE {_SCOPE} ORDER BY 1""",
    "pg_class": f"""
        SELECT n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition,
            c.reloptions, pg_get_expr(c.relpartbound, c.oid), {_ACL.format("c.relacl")},
            obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner),
            c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE {_SCOPE} ORDER BY 1, 2""",
    "pg_attribute": f"""
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
            a.attnotnull, a.attidentity, a.attgenerated,
            pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum),
            {_ACL.format("a.attacl")}
        FROM pg_attribute AS a
        JOIN pg_class AS c ON c.oid = a.attrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE {_SCOPE} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2, 3""",
    "pg_constraint": f"""
        SELECT n.nspname, c.conname, c.contype, c.conrelid::regclass::text,
            pg_get_constraintdef(c.oid), obj_description(c.oid, 'pg_constraint')
        FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
        WHERE {_SCOPE} ORDER BY 1, 4, 2""",
    "pg_index": f"""
        SELECT n.nspname, ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique,
            i.indisprimary, i.indisvalid
        FROM pg_index AS i
        JOIN pg_class AS ic ON ic.oid = i.indexrelid
        JOIN pg_namespace AS n ON n.oid = ic.relnamespace
        WHERE {_SCOPE} ORDER BY 1, 2""",
    "pg_proc": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
            pg_get_function_result(p.oid), md5(p.prosrc), p.prosecdef, p.provolatile,
            p.proconfig, {_ACL.format("p.proacl")}, obj_description(p.oid, 'pg_proc')
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE {_SCOPE} ORDER BY 1, 2, 3""",
    "pg_trigger": f"""
        SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger AS t
        JOIN pg_class AS c ON c.oid = t.tgrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE {_SCOPE} AND NOT t.tgisinternal ORDER BY 1, 2, 3""",
    "pg_policy": f"""
        SELECT n.nspname, c.relname, p.polname, p.polcmd, p.polpermissive,
            pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
        FROM pg_policy AS p
        JOIN pg_class AS c ON c.oid = p.polrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE {_SCOPE} ORDER BY 1, 2, 3""",
    "pg_type": f"""
        SELECT n.nspname, t.typname, t.typtype, {_ACL.format("t.typacl")}
        FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
        WHERE {_SCOPE} ORDER BY 1, 2""",
    "pg_default_acl": """
        SELECT pg_get_userbyid(d.defaclrole), d.defaclnamespace::regnamespace::text,
            d.defaclobjtype, (SELECT array_agg(a::text ORDER BY a::text)
                              FROM unnest(d.defaclacl) AS a)
        FROM pg_default_acl AS d ORDER BY 1, 2, 3""",
    "pg_extension": "SELECT extname, extversion FROM pg_extension ORDER BY 1",
}


def snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Return the catalog rows that describe the database's schema, per catalog."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {name: conn.execute(query).fetchall() for name, query in SNAPSHOT_QUERIES.items()}


def with_db(dsn: str, dbname: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def copy_migrations(target: Path, upto: int) -> Path:
    """Copy the first *upto* migrations (with their rollbacks) into *target*."""
    target.mkdir(exist_ok=True)
    for mid in IDS[:upto]:
        for suffix in (".sql", ".rollback.sql"):
            shutil.copy(migrations_dir() / f"{mid}{suffix}", target / f"{mid}{suffix}")
    return target


def applied_log(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT migration_id, operation FROM vdata_migrations._yoyo_log ORDER BY created_at_utc"
        ).fetchall()


def test_there_are_migrations_each_with_a_rollback() -> None:
    assert IDS, "no migrations found"
    for mid in IDS:
        assert (migrations_dir() / f"{mid}.rollback.sql").is_file(), mid


def test_status_on_an_empty_database_lists_every_migration_pending(empty_dsn: str) -> None:
    states = migrations.status(empty_dsn)
    assert [(s.id, s.state) for s in states] == [(mid, "pending") for mid in IDS]
    with psycopg.connect(empty_dsn) as conn:  # status is read-only
        row = conn.execute("SELECT to_regnamespace('vdata_migrations')").fetchone()
        assert row == (None,)


def test_apply_all_rollback_all_leaves_an_empty_catalog_then_reapplies(empty_dsn: str) -> None:
    empty = snapshot(empty_dsn)

    assert migrations.apply(empty_dsn) == IDS
    migrated = snapshot(empty_dsn)
    assert any(row[0] == "app" for row in migrated["pg_namespace"])
    assert migrations.apply(empty_dsn) == []  # nothing left to do
    assert [s.state for s in migrations.status(empty_dsn)] == ["applied"] * len(IDS)

    assert migrations.rollback(empty_dsn, len(IDS)) == IDS[::-1]
    assert snapshot(empty_dsn) == empty
    assert [s.state for s in migrations.status(empty_dsn)] == ["pending"] * len(IDS)

    assert migrations.apply(empty_dsn) == IDS
    assert snapshot(empty_dsn) == migrated


@pytest.mark.parametrize("position", range(len(IDS)), ids=IDS)
def test_each_migration_rolls_back_to_the_catalog_before_it(
    empty_dsn: str, tmp_path: Path, position: int
) -> None:
    folder = copy_migrations(tmp_path / "m", position)
    assert migrations.apply(empty_dsn, migrations=folder) == IDS[:position]
    before = snapshot(empty_dsn)

    copy_migrations(folder, position + 1)
    assert migrations.apply(empty_dsn, migrations=folder) == [IDS[position]]
    after = snapshot(empty_dsn)
    assert after != before, f"{IDS[position]} changed nothing in the catalog"

    assert migrations.rollback(empty_dsn, 1, migrations=folder) == [IDS[position]]
    assert snapshot(empty_dsn) == before


def test_concurrent_runs_apply_each_migration_exactly_once(empty_dsn: str) -> None:
    results = race_two_runs(empty_dsn)
    assert [code for code, _, _ in results] == [0, 0], results
    reported = sorted(line.strip() for _, out, _ in results for line in out.splitlines()[1:])
    assert reported == IDS
    assert applied_log(empty_dsn) == [(mid, "apply") for mid in IDS]


def test_a_run_that_cannot_get_the_lock_fails_saying_so(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
        with pytest.raises(migrations.MigrationError, match="another migration run"):
            migrations.apply(empty_dsn, lock_wait=0.2)
    assert migrations.apply(empty_dsn) == IDS


@pytest.mark.parametrize("suffix", [".sql", ".rollback.sql"])
def test_an_edited_applied_migration_is_refused_naming_the_file(
    empty_dsn: str, tmp_path: Path, suffix: str
) -> None:
    folder = copy_migrations(tmp_path / "m", len(IDS))
    migrations.apply(empty_dsn, migrations=folder)
    edited = folder / f"{IDS[1]}{suffix}"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")

    for run in (migrations.apply, migrations.rollback):
        with pytest.raises(migrations.MigrationChangedError) as info:
            run(empty_dsn, migrations=folder)
        assert edited.name in str(info.value)
        assert info.value.path == edited

    state = {s.id: s for s in migrations.status(empty_dsn, migrations=folder)}[IDS[1]]
    assert state.state == "changed"
    assert edited.name in state.detail


def test_cli_exits_1_naming_the_edited_file_and_status_reports_it(
    empty_dsn: str, tmp_path: Path
) -> None:
    folder = copy_migrations(tmp_path / "m", len(IDS))
    migrations.apply(empty_dsn, migrations=folder)
    edited = folder / f"{IDS[0]}.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    from vdata.cli import main

    assert main(["migrate", "--dsn", empty_dsn, "--migrations", str(folder)]) == 1
    assert main(["migrate", "status", "--dsn", empty_dsn, "--migrations", str(folder)]) == 1


def test_migration_sessions_have_lock_timeout(empty_dsn: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m", len(IDS))
    migrations.apply(empty_dsn, migrations=folder)
    (folder / "9000.add-users-nickname.sql").write_text(
        f"-- test\n-- depends: {IDS[-1]}\n\nALTER TABLE app.users ADD COLUMN nickname text;\n"
    )
    (folder / "9000.add-users-nickname.rollback.sql").write_text(
        "ALTER TABLE app.users DROP COLUMN nickname;\n"
    )
    with psycopg.connect(empty_dsn) as blocker:  # an open transaction reading users
        blocker.execute("SELECT count(*) FROM app.users")
        started = time.monotonic()
        with pytest.raises(migrations.MigrationError, match=r"9000\.add-users-nickname.*lock"):
            migrations.apply(empty_dsn, migrations=folder, lock_timeout=0.3)
        assert time.monotonic() - started < 10
    assert migrations.apply(empty_dsn, migrations=folder) == ["9000.add-users-nickname"]


def test_migration_sessions_have_statement_timeout(empty_dsn: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m", 1)
    (folder / "9000.wait-forever.sql").write_text(
        f"-- test\n-- depends: {IDS[0]}\n\nDO $$ BEGIN PERFORM pg_sleep(30); END $$;\n"
    )
    (folder / "9000.wait-forever.rollback.sql").write_text("-- nothing to undo\n")
    with pytest.raises(migrations.MigrationError, match="statement timeout"):
        migrations.apply(empty_dsn, migrations=folder, statement_timeout=0.3)
    # The failed migration left nothing behind: not marked, not checksummed.
    states = {s.id: s.state for s in migrations.status(empty_dsn, migrations=folder)}
    assert states == {IDS[0]: "applied", "9000.wait-forever": "pending"}


def test_rollback_refuses_a_migration_without_rollback_file(empty_dsn: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m", 1)
    (folder / f"{IDS[0]}.rollback.sql").unlink()
    migrations.apply(empty_dsn, migrations=folder)
    # yoyo would skip it silently and mark it rolled back; vdata refuses.
    with pytest.raises(migrations.MigrationError, match=r"has no rollback file"):
        migrations.rollback(empty_dsn, migrations=folder)
    assert [s.state for s in migrations.status(empty_dsn, migrations=folder)] == ["applied"]


def test_deleting_an_applied_rollback_file_counts_as_an_edit(
    empty_dsn: str, tmp_path: Path
) -> None:
    folder = copy_migrations(tmp_path / "m", 1)
    migrations.apply(empty_dsn, migrations=folder)
    (folder / f"{IDS[0]}.rollback.sql").unlink()
    with pytest.raises(migrations.MigrationChangedError, match=r"\.rollback\.sql was edited"):
        migrations.rollback(empty_dsn, migrations=folder)
    assert [s.state for s in migrations.status(empty_dsn, migrations=folder)] == ["changed"]


def test_error_messages_do_not_show_the_password(vdata_server: Any) -> None:
    dsn = "postgresql://someone:hunter2-s3cr3t@127.0.0.1:1/nowhere"
    for run in (migrations.apply, migrations.status):
        with pytest.raises(migrations.MigrationError) as info:
            run(dsn)
        assert "hunter2" not in str(info.value)
        assert "cannot connect" in str(info.value)


def test_new_creates_the_pair_depending_on_the_latest(tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m", len(IDS))
    path, rollback_path = migrations.new("Add tasks labels", migrations=folder)
    number = int(IDS[-1].split(".")[0]) + 1
    assert path.name == f"{number:04d}.add-tasks-labels.sql"
    assert rollback_path.name == f"{number:04d}.add-tasks-labels.rollback.sql"
    assert f"-- depends: {IDS[-1]}" in path.read_text()

    from yoyo import read_migrations

    assert [m.id for m in read_migrations(str(folder))][-1] == path.stem
    with pytest.raises(migrations.MigrationError, match="verb"):
        migrations.new("labels", migrations=folder)


def test_apply_accepts_yoyo_and_keyword_dsns(empty_dsn: str) -> None:
    parts = urlsplit(empty_dsn)
    keyword = (
        f"host={parts.hostname} port={parts.port} dbname={parts.path[1:]}"
        f" user={parts.username}" + (f" password={parts.password}" if parts.password else "")
    )
    assert migrations.apply(keyword) == IDS
    yoyo_style = empty_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    assert migrations.status(yoyo_style)[0].state == "applied"


def test_a_migration_depending_on_no_file_is_reported(empty_dsn: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m", 1)
    (folder / "9000.add-orphan.sql").write_text("-- test\n-- depends: 8999.nothing\n\nSELECT 1;\n")
    with pytest.raises(migrations.MigrationError, match=r"9000\.add-orphan"):
        migrations.apply(empty_dsn, migrations=folder)
