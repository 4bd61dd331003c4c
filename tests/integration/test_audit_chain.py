"""The sealed audit chain under concurrency, and tampering by the owner role detected."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import vdata.database
from tests.integration._users import cheap_settings
from tests.integration._work import make_users
from vdata import migrations
from vdata._resources import migrations_dir
from vdata.cli import main
from vdata.errors import PermissionDeniedError, VdataError
from vdata.models.audit import ChainHead
from vdata.models.projects import NewProject, ProjectPatch

pytestmark = pytest.mark.integration


@pytest.fixture
def vdata_settings() -> Any:
    """Cheap argon2 parameters: these tests create users, they do not measure hashing."""
    return cheap_settings()


@pytest.fixture
async def owner(vdata_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """An owner (superuser) connection that bypasses triggers, as a tamperer would."""
    conn = await asyncpg.connect(vdata_dsn)
    await conn.execute("SET session_replication_role = replica")
    try:
        yield conn
    finally:
        await conn.close()


async def seed(db: Any, n: int, *, seal: bool = True) -> list[int]:
    """Append *n* events (then seal them, unless told not to); return their ids."""
    ids = [(await db.audit.record("test.seed", "thing", str(i), actor="seed")).id for i in range(n)]
    if seal:
        assert (await db.audit.seal()).rows_sealed >= n
    return ids


async def sealed_entries(conn: asyncpg.Connection) -> dict[int, tuple[int, bytes]]:
    """Return {id: (seal_id, row_hash)} as the seals list them, read independently of vdata."""
    rows = await conn.fetch(
        "SELECT s.seal_id, e.id, e.row_hash FROM app.audit_log_seal AS s,"
        " unnest(s.ids, s.row_hashes) AS e (id, row_hash)"
    )
    found: dict[int, tuple[int, bytes]] = {}
    for row in rows:
        assert row["id"] not in found, f"id {row['id']} sealed twice"
        found[row["id"]] = (row["seal_id"], row["row_hash"])
    return found


async def test_chain_holds_after_1000_concurrent_audited_writes(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    db = vdata_db
    olga = (await make_users(db, "olga"))["olga"]
    writing = True

    async def sealer() -> int:
        seals = 0
        while writing:
            seals += (await db.audit.seal()).seal_id is not None
            await asyncio.sleep(0.005)
        return seals

    async def write(i: int) -> None:
        if i % 4 == 0:  # a project write and its event, in one statement
            await db.projects.create(NewProject(name=f"p{i}"), owner_id=olga, actor=f"w{i}")
        elif i % 4 == 1:  # two events in one transaction, committed after other writers
            async with db.transaction(actor=f"w{i}") as tx:
                await tx.audit.record("test.tx", "thing", f"{i}a")
                await asyncio.sleep(0.001)
                await tx.audit.record("test.tx", "thing", f"{i}b")
        else:
            await db.audit.record("test.pool", "thing", str(i), actor=f"w{i}")

    sealing = asyncio.create_task(sealer())
    await asyncio.gather(*(write(i) for i in range(1000)))
    writing = False
    assert await sealing >= 1  # sealed while the writers ran, not only at the end
    await db.audit.seal()
    report = await db.audit.verify_chain()
    expected = 1 + 250 + 2 * 250 + 500  # the user's creation, then the writes above
    assert (report.ok, report.rows_checked, report.genesis, report.unsealed) == (
        True,
        expected,
        True,
        0,
    ), report
    # Independently of the SQL check: every row is in exactly one seal, with its hash.
    entries = await sealed_entries(owner)
    count = 0
    async for event in db.audit.export():
        assert event.prev_hash is None
        assert entries[event.id][1] == event.row_hash
        count += 1
    assert count == len(entries) == expected


async def test_rows_are_sealed_once_whatever_order_their_transactions_commit_in(
    vdata_db: Any,
) -> None:
    db = vdata_db
    async with db.transaction(actor="slow") as slow:
        early = await slow.audit.record("test.order", "thing", "early")  # the lower id
        late = await db.audit.record("test.order", "thing", "late", actor="fast")
        assert late.id > early.id
        first = await db.audit.seal()  # the slow transaction has not committed
        assert first.rows_sealed == 1
        report = await db.audit.verify_chain()
        assert (report.ok, report.unsealed) == (True, 0)  # uncommitted: not even counted
    second = await db.audit.seal()
    assert second.rows_sealed == 1 and second.seal_id is not None
    assert first.seal_id is not None and second.seal_id > first.seal_id
    assert (await db.audit.seal()).seal_id is None  # nothing left
    report = await db.audit.verify_chain()
    assert (report.ok, report.rows_checked, report.unsealed) == (True, 2, 0)


async def test_unsealed_rows_are_counted_then_sealed(vdata_db: Any) -> None:
    await seed(vdata_db, 3, seal=False)
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.rows_checked, report.unsealed) == (True, 3, 3)
    assert await vdata_db.audit.head() == ChainHead(None, None)
    sealed = await vdata_db.audit.seal()
    assert (sealed.seal_id is not None, sealed.rows_sealed) == (True, 3)
    assert (await vdata_db.audit.verify_chain()).unsealed == 0
    assert (await vdata_db.audit.head()).last_id == sealed.seal_id


async def test_a_seal_never_lists_the_callers_uncommitted_rows(vdata_db: Any) -> None:
    async with vdata_db.transaction(actor="ada") as tx:
        await tx.audit.record("test.seal", "thing", "mine")
        with pytest.raises(VdataError):
            await tx.audit.seal()
    assert (await vdata_db.audit.verify_chain()).unsealed == 0  # rolled back: nothing


async def test_altered_row_is_found(vdata_db: Any, owner: asyncpg.Connection) -> None:
    ids = await seed(vdata_db, 20)
    await owner.execute("UPDATE app.audit_log SET actor = 'mallory' WHERE id = $1", ids[7])
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[7])
    assert report.reason is not None and report.reason.startswith("row altered: row_hash does")
    # A careful forger re-computes the row's hash: its seal still names it.
    await owner.execute(
        "UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id = $1", ids[7]
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[7])
    assert report.reason is not None and "differs from the one seal" in report.reason
    # Up to the damage, and from past it, the rest holds.
    before = await owner.fetchval("SELECT occurred_at FROM app.audit_log WHERE id = $1", ids[7])
    assert (await vdata_db.audit.verify_chain(until=before)).ok
    trusted = await vdata_db.audit.verify_chain(from_id=ids[8])
    assert (trusted.ok, trusted.genesis, trusted.first_id) == (True, False, ids[8])


async def test_deleted_row_is_found(vdata_db: Any, owner: asyncpg.Connection) -> None:
    ids = await seed(vdata_db, 10)
    await owner.execute("DELETE FROM app.audit_log WHERE id = $1", ids[4])
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[4])
    assert report.reason is not None and report.reason.startswith("row deleted")


async def test_row_inserted_in_the_middle_is_found(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    # Ids are consecutive: leave a gap (an id drawn and never used) to forge into.
    ids = await seed(vdata_db, 4, seal=False)
    forged = await owner.fetchval("SELECT nextval('app.audit_log_id_seq')")
    ids += await seed(vdata_db, 6)
    assert forged not in ids and ids[3] < forged < ids[4]
    await owner.execute(
        """INSERT INTO app.audit_log (id, occurred_at, actor, action, entity_type, row_hash)
           SELECT $1, a.occurred_at, 'mallory', 'user.delete', 'user', sha256('forged')
           FROM app.audit_log AS a WHERE a.id = $2""",
        forged,
        ids[3],
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, forged)
    # Well-formed, with the transaction id of a sealed neighbour: in no seal, though due.
    await owner.execute(
        """UPDATE app.audit_log AS a
           SET xact = (SELECT b.xact FROM app.audit_log AS b WHERE b.id = $2)
           WHERE a.id = $1""",
        forged,
        ids[3],
    )
    await owner.execute(
        "UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id = $1", forged
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, forged)
    assert report.reason is not None and "inserted behind the sealer" in report.reason


async def test_row_appended_with_the_trigger_bypassed_is_found(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    await seed(vdata_db, 5)
    forged = await owner.fetchval(
        """INSERT INTO app.audit_log (id, actor, action, entity_type, row_hash)
           VALUES (nextval('app.audit_log_id_seq'), 'mallory', 'user.create', 'user',
               sha256('placeholder'))
           RETURNING id"""
    )
    await owner.execute(
        "UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id = $1", forged
    )
    await vdata_db.audit.seal()  # the sealer never lists a row without a transaction id
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, forged)
    assert report.reason is not None and "trigger bypassed" in report.reason


async def test_newest_rows_deleted_are_found(vdata_db: Any, owner: asyncpg.Connection) -> None:
    ids = await seed(vdata_db, 5)
    await owner.execute("DELETE FROM app.audit_log WHERE id >= $1", ids[3])
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[3])
    assert report.reason is not None and report.reason.startswith("row deleted")


async def test_reordered_rows_are_found(vdata_db: Any, owner: asyncpg.Connection) -> None:
    ids = await seed(vdata_db, 6)
    # Swap the ids of two rows: each hash covers its id.
    await owner.execute(
        """UPDATE app.audit_log SET id = CASE id WHEN $1 THEN $2 ELSE $1 END
           WHERE id IN ($1, $2)""",
        ids[1],
        ids[4],
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[1])
    assert report.reason is not None and report.reason.startswith("row altered")
    # Re-hashed after the swap, each row still differs from what its seal lists.
    await owner.execute(
        "UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id IN ($1, $2)",
        ids[1],
        ids[4],
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[1])
    assert report.reason is not None and "differs from the one seal" in report.reason


async def test_forged_head_and_altered_or_deleted_seals_are_found(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    first = await seed(vdata_db, 3)
    second = await seed(vdata_db, 3)
    third = await seed(vdata_db, 3)
    assert (await vdata_db.audit.verify_chain()).ok
    # A forged head: the newest seal no longer matches it.
    await owner.execute("UPDATE app.audit_log_head SET last_seal_hash = sha256('forged')")
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, third[0])
    assert report.reason is not None and "not the sealing head" in report.reason
    await owner.execute(
        """UPDATE app.audit_log_head AS h SET last_seal_hash = s.seal_hash
           FROM app.audit_log_seal AS s WHERE s.seal_id = h.last_seal_id"""
    )
    assert (await vdata_db.audit.verify_chain()).ok
    # A seal whose list is altered to match an altered row.
    await owner.execute("UPDATE app.audit_log SET actor = 'mallory' WHERE id = $1", second[1])
    await owner.execute(
        "UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id = $1",
        second[1],
    )
    await owner.execute(
        """UPDATE app.audit_log_seal AS s
           SET row_hashes[array_position(s.ids, $1)] = a.row_hash
           FROM app.audit_log AS a WHERE a.id = $1 AND $1 = ANY (s.ids)""",
        second[1],
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, second[0])
    assert report.reason is not None and "altered: seal_hash does not match" in report.reason
    # The owner re-hashes that seal too: the next one's link breaks.
    await owner.execute(
        """UPDATE app.audit_log_seal AS s SET seal_hash = app.audit_log_seal_hash(s)
           WHERE $1 = ANY (s.ids)""",
        second[1],
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, third[0])
    assert report.reason is not None and "does not link to the seal before it" in report.reason
    # A seal deleted: its rows are in no seal, though due, and the first one is named.
    await owner.execute("DELETE FROM app.audit_log_seal WHERE $1 = ANY (ids)", first[0])
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, first[0])
    assert report.reason is not None and "inserted behind the sealer" in report.reason


async def test_empty_trail_verifies(vdata_db: Any) -> None:
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.rows_checked, report.first_id, report.unsealed) == (True, 0, None, 0)
    assert (await vdata_db.audit.seal()).seal_id is None


async def test_retention_drops_old_months_and_the_rest_still_verifies(
    vdata_db: Any, vdata_dsn: str
) -> None:
    conn = await asyncpg.connect(vdata_dsn)
    try:
        await conn.execute(
            "CREATE TABLE app.audit_log_y2020m01 PARTITION OF app.audit_log"
            " FOR VALUES FROM ('2020-01-01') TO ('2020-02-01')"
        )
        for _ in range(3):  # through the trigger, dated in January 2020
            await conn.execute(
                "INSERT INTO app.audit_log (occurred_at, actor, action, entity_type)"
                " VALUES ('2020-01-15', 'old', 'test.old', 'thing')"
            )
    finally:
        await conn.close()
    ids = await seed(vdata_db, 3)
    assert (await vdata_db.audit.verify_chain()).rows_checked == 6
    with pytest.raises(PermissionDeniedError):  # the service role cannot apply retention
        await vdata_db.audit.drop_partitions(keep_months=3)
    async with await vdata.database.connect(vdata_dsn) as as_owner:
        assert await as_owner.audit.drop_partitions(keep_months=3) == ["audit_log_y2020m01"]
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.rows_checked, report.first_id, report.genesis) == (
        True,
        3,
        ids[0],
        False,  # rows before the first surviving one were sealed, then dropped
    )


async def test_cli_seals_and_verify_exits_1_naming_the_row(
    vdata_db: Any, vdata_app_dsn: str, owner: asyncpg.Connection, capsys: Any
) -> None:
    ids = await seed(vdata_db, 5, seal=False)
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, main, ["audit", "verify", "--dsn", vdata_app_dsn])
    assert code == 0
    assert "audit chain OK: 5 row(s) checked, ids" in capsys.readouterr().out
    code = await loop.run_in_executor(None, main, ["audit", "seal", "--dsn", vdata_app_dsn])
    assert (code, capsys.readouterr().out.split(":")[1]) == (0, " 5 row(s)\n")
    await owner.execute("UPDATE app.audit_log SET after = '{}' WHERE id = $1", ids[2])
    code = await loop.run_in_executor(None, main, ["audit", "verify", "--dsn", vdata_app_dsn])
    assert code == 1
    assert f"audit chain BROKEN at id {ids[2]}: row altered" in capsys.readouterr().out
    os.environ.pop("VDATA_DSN", None)
    assert await loop.run_in_executor(None, main, ["audit", "verify"]) == 2


async def _rate(db: Any, seconds: float, workers: int) -> float:
    """Return audited writes/s by *workers* concurrent writers over *seconds*."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer(n: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await db.audit.record("test.rate", "thing", str(n), actor="bench")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(workers)))
    return done / (time.perf_counter() - started)


async def test_audit_write_rate_with_chain_on_and_off(
    vdata_db: Any, vdata_dsn: str, owner: asyncpg.Connection
) -> None:
    """Measure, in one run, what the chain costs the writers (printed, not asserted)."""
    workers = vdata_db.settings.pool_max_size
    writing = True

    async def sealer() -> None:
        while writing:
            await vdata_db.audit.seal()
            await asyncio.sleep(0.2)

    sealing = asyncio.create_task(sealer())
    chained = await _rate(vdata_db, 1.0, workers)
    writing = False
    await sealing
    await vdata_db.audit.seal()
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.unsealed) == (True, 0)  # every row written was sealed
    # Chain off, on this throwaway clone only: the row is still hashed (the
    # same function) but never sealed.
    await owner.execute("SET session_replication_role = DEFAULT")
    await owner.execute(
        """CREATE FUNCTION app.audit_log_unchained() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               NEW.id := nextval('app.audit_log_id_seq'::regclass);
               NEW.row_hash := app.audit_log_row_hash(NEW);
               RETURN NEW;
           END; $$;
           ALTER TABLE app.audit_log DISABLE TRIGGER trigger_audit_log_chain;
           CREATE TRIGGER trigger_audit_log_unchained BEFORE INSERT ON app.audit_log
           FOR EACH ROW EXECUTE FUNCTION app.audit_log_unchained();"""
    )
    unchained = await _rate(vdata_db, 1.0, workers)
    report = await vdata_db.audit.verify_chain()
    assert report.reason is not None and "trigger bypassed" in report.reason  # really off
    print(
        f"\naudit writes/s with {workers} writers: chain on (sealer every 0.2 s) "
        f"{chained:.0f}, chain off {unchained:.0f} ({chained / unchained:.0%})",
        file=sys.stderr,
    )
    assert chained > 0 and unchained > 0


async def test_updates_are_sealed_too(vdata_db: Any) -> None:
    db = vdata_db
    olga = (await make_users(db, "olga"))["olga"]
    project = await db.projects.create(NewProject(name="p"), owner_id=olga, actor="olga")

    async def bump(i: int) -> None:
        async with db.transaction(actor="olga") as tx:
            current = await tx.projects.get(project.id, as_user=olga)
            await tx.projects.update(
                project.id,
                ProjectPatch(description=str(i)),
                expected_version=current.version,
                as_user=olga,
            )

    results = await asyncio.gather(*(bump(i) for i in range(20)), return_exceptions=True)
    assert all(r is None or type(r).__name__ == "StaleVersionError" for r in results)
    await db.audit.seal()
    report = await db.audit.verify_chain()
    assert (report.ok, report.unsealed) == (True, 0)


async def test_savepoint_rollback_leaves_its_rows_out_of_every_seal(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    db = vdata_db
    await seed(db, 2)
    async with db.transaction(actor="ada") as tx:
        await tx.audit.record("test.sp", "thing", "kept")
        try:
            async with tx.transaction() as inner:
                undone = await inner.audit.record("test.sp", "thing", "undone")
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        await tx.audit.record("test.sp", "thing", "last")
    assert [e.entity_id for e in await db.audit.history("thing", "undone")] == []
    assert (await db.audit.seal()).rows_sealed == 2
    assert undone.id not in await sealed_entries(owner)
    report = await db.audit.verify_chain()
    assert (report.ok, report.rows_checked, report.unsealed) == (True, 4, 0)


async def test_repeatable_read_writers_no_longer_conflict(vdata_db: Any) -> None:
    """Writers share no lock: REPEATABLE READ units of work holding rows never retry."""
    db = vdata_db

    async def unit(tx: Any) -> None:
        await tx.audit.record("test.rr", "thing", "a")
        await asyncio.sleep(0.01)  # others write meanwhile
        await tx.audit.record("test.rr", "thing", "b")

    await asyncio.gather(
        *(
            db.run_in_transaction(unit, actor=f"rr{i}", isolation="repeatable_read", retries=50)
            for i in range(8)
        )
    )
    assert db.counters.retries == 0
    await db.audit.seal()
    report = await db.audit.verify_chain()
    assert (report.ok, report.rows_checked, report.unsealed) == (True, 16, 0)


async def test_recomputed_seals_are_caught_only_by_an_external_anchor(
    vdata_db: Any, vdata_app_dsn: str, owner: asyncpg.Connection, capsys: Any
) -> None:
    ids = await seed(vdata_db, 6)
    anchor = await vdata_db.audit.head()
    assert anchor.last_id is not None
    # The owner alters a row and re-computes its hash, its seal's list and
    # hash, and the head.
    await owner.execute("UPDATE app.audit_log SET actor = 'mallory' WHERE id = $1", ids[2])
    await owner.execute(
        """UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id = $1;""",
        ids[2],
    )
    await owner.execute(
        """UPDATE app.audit_log_seal AS s
           SET row_hashes[array_position(s.ids, $1)] = a.row_hash
           FROM app.audit_log AS a WHERE a.id = $1 AND $1 = ANY (s.ids)""",
        ids[2],
    )
    await owner.execute(
        """UPDATE app.audit_log_seal AS s SET seal_hash = app.audit_log_seal_hash(s);
           UPDATE app.audit_log_head AS h SET last_seal_hash = s.seal_hash
           FROM app.audit_log_seal AS s WHERE s.seal_id = h.last_seal_id;"""
    )
    assert (await vdata_db.audit.verify_chain()).ok  # consistent again: the limit of a chain
    report = await vdata_db.audit.verify_chain(anchor=anchor)
    assert (report.ok, report.broken_id) == (False, anchor.last_id)
    assert report.reason is not None and report.reason.startswith("anchored seal changed")
    args = ["audit", "verify", "--dsn", vdata_app_dsn, "--anchor-id", str(anchor.last_id)]
    args += ["--anchor-hash", (anchor.last_hash or b"").hex()]
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, main, args) == 1
    assert await loop.run_in_executor(None, main, ["audit", "head", "--dsn", vdata_app_dsn]) == 0
    assert f"--anchor-id {anchor.last_id} --anchor-hash " in capsys.readouterr().out


def _migrations_upto(folder: Path, last: str) -> Path:
    """Copy the bundled migrations up to and including *last* into *folder*."""
    folder.mkdir(exist_ok=True)
    for path in sorted(migrations_dir().glob("*.sql")):
        if path.name.split(".")[0] <= last.split(".")[0]:
            shutil.copy(path, folder / path.name)
    return folder


async def test_migration_seals_on_top_of_the_linked_chain_without_rewriting_it(
    empty_dsn: str, tmp_path: Path
) -> None:
    """Rows linked before 0320 keep their links; later rows are sealed; both verify; rollback."""
    folder = _migrations_upto(tmp_path / "m", "0310")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lambda: migrations.apply(empty_dsn, migrations=folder))
    conn = await asyncpg.connect(empty_dsn)
    try:
        insert = (
            "INSERT INTO app.audit_log (actor, action, entity_type, entity_id)"
            " VALUES ('ada', 'test.mig', 'thing', $1) RETURNING id, prev_hash, row_hash"
        )
        linked = [await conn.fetchrow(insert, str(i)) for i in range(4)]
        assert linked[1]["prev_hash"] == linked[0]["row_hash"]
        _migrations_upto(folder, "0320")
        await loop.run_in_executor(None, lambda: migrations.apply(empty_dsn, migrations=folder))
        after = [await conn.fetchrow(insert, f"n{i}") for i in range(3)]
        assert after[0]["prev_hash"] is None
        kept = await conn.fetch("SELECT id, prev_hash, row_hash FROM app.audit_log ORDER BY id")
        assert [tuple(r) for r in kept[:4]] == [tuple(r) for r in linked]  # history untouched
        async with await vdata.database.connect(empty_dsn) as db:
            report = await db.audit.verify_chain()
            assert (report.ok, report.rows_checked, report.unsealed) == (True, 7, 3)
            pre_upgrade = ChainHead(linked[-1]["id"], linked[-1]["row_hash"])
            assert (await db.audit.verify_chain(anchor=pre_upgrade)).ok
            assert (await db.audit.seal()).rows_sealed == 3
            # The first seal links to the old chain's head.
            first_seal_prev = await conn.fetchval(
                "SELECT prev_hash FROM app.audit_log_seal ORDER BY seal_id LIMIT 1"
            )
            assert first_seal_prev == linked[-1]["row_hash"]
            report = await db.audit.verify_chain()
            assert (report.ok, report.genesis, report.unsealed) == (True, True, 0)
            # Linked rows are still checked link by link.
            await conn.execute("SET session_replication_role = replica")
            await conn.execute("DELETE FROM app.audit_log WHERE id = $1", linked[1]["id"])
            report = await db.audit.verify_chain()
            assert (report.ok, report.broken_id) == (False, linked[2]["id"])
            assert report.reason is not None and report.reason.startswith("link broken")
            await conn.execute("SET session_replication_role = DEFAULT")
        # The rollback restores the linked chain, continuing from the newest row.
        await loop.run_in_executor(
            None, lambda: migrations.rollback(empty_dsn, 1, migrations=folder)
        )
        back = await conn.fetchrow(insert, "back")
        assert back["prev_hash"] == after[-1]["row_hash"]
    finally:
        await conn.close()
