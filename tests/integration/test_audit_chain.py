"""The audit hash chain under concurrency, and tampering by the owner role detected."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

import vdata.database
from tests.integration._users import cheap_settings
from tests.integration._work import make_users
from vdata.cli import main
from vdata.errors import PermissionDeniedError
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


async def seed(db: Any, n: int) -> list[int]:
    """Append *n* events; return their ids."""
    return [
        (await db.audit.record("test.seed", "thing", str(i), actor="seed")).id for i in range(n)
    ]


async def test_chain_holds_after_1000_concurrent_audited_writes(vdata_db: Any) -> None:
    db = vdata_db
    olga = (await make_users(db, "olga"))["olga"]

    async def write(i: int) -> None:
        if i % 4 == 0:  # a project write and its event, in one statement
            await db.projects.create(NewProject(name=f"p{i}"), owner_id=olga, actor=f"w{i}")
        elif i % 4 == 1:  # two events in one transaction, holding the chain head
            async with db.transaction(actor=f"w{i}") as tx:
                await tx.audit.record("test.tx", "thing", f"{i}a")
                await tx.audit.record("test.tx", "thing", f"{i}b")
        else:
            await db.audit.record("test.pool", "thing", str(i), actor=f"w{i}")

    await asyncio.gather(*(write(i) for i in range(1000)))
    report = await db.audit.verify_chain()
    expected = 1 + 250 + 2 * 250 + 500  # the user's creation, then the writes above
    assert (report.ok, report.rows_checked, report.genesis) == (True, expected, True), report
    # Independently of the SQL check: ids ascend along the chain, links hold.
    previous = None
    async for event in db.audit.export():
        assert event.prev_hash == previous
        previous = event.row_hash


async def test_altered_row_is_found(vdata_db: Any, owner: asyncpg.Connection) -> None:
    ids = await seed(vdata_db, 20)
    await owner.execute("UPDATE app.audit_log SET actor = 'mallory' WHERE id = $1", ids[7])
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[7])
    assert report.reason is not None and report.reason.startswith("row altered")
    # A careful forger re-computes the row's hash: the next link breaks instead.
    await owner.execute(
        "UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id = $1", ids[7]
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[8])
    assert report.reason is not None and report.reason.startswith("link broken")
    # Up to the damage, and from past it (trusting that row), the chain holds.
    before = await owner.fetchval("SELECT occurred_at FROM app.audit_log WHERE id = $1", ids[7])
    assert (await vdata_db.audit.verify_chain(until=before)).ok
    trusted = await vdata_db.audit.verify_chain(from_id=ids[9])
    assert (trusted.ok, trusted.genesis, trusted.first_id) == (True, False, ids[9])


async def test_deleted_row_is_found(vdata_db: Any, owner: asyncpg.Connection) -> None:
    ids = await seed(vdata_db, 10)
    await owner.execute("DELETE FROM app.audit_log WHERE id = $1", ids[4])
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[5])
    assert report.reason is not None and "deleted" in report.reason


async def test_row_inserted_in_the_middle_is_found(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    # Ids are consecutive: leave a gap (an id drawn and never used) to forge into.
    ids = await seed(vdata_db, 4)
    forged = await owner.fetchval("SELECT nextval('app.audit_log_id_seq')")
    ids += await seed(vdata_db, 6)
    assert forged not in ids and ids[3] < forged < ids[4]
    await owner.execute(
        """INSERT INTO app.audit_log (id, occurred_at, actor, action, entity_type, prev_hash,
               row_hash)
           SELECT $1, a.occurred_at, 'mallory', 'user.delete', 'user', a.row_hash,
               sha256('forged')
           FROM app.audit_log AS a WHERE a.id = $2""",
        forged,
        ids[3],
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, forged)
    # With a well-formed hash of its own, the forged row breaks the next link.
    await owner.execute(
        "UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id = $1", forged
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[4])


async def test_row_appended_with_the_trigger_bypassed_is_found(
    vdata_db: Any, owner: asyncpg.Connection
) -> None:
    ids = await seed(vdata_db, 5)
    # A perfect forgery: linked to the last row, its hash computed as the
    # trigger would; only the chain head (written by the trigger) disagrees.
    forged = await owner.fetchval(
        """INSERT INTO app.audit_log (id, actor, action, entity_type, prev_hash, row_hash)
           SELECT nextval('app.audit_log_id_seq'), 'mallory', 'user.create', 'user',
               a.row_hash, sha256('placeholder')
           FROM app.audit_log AS a WHERE a.id = $1
           RETURNING id""",
        ids[-1],
    )
    await owner.execute(
        "UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a) WHERE id = $1", forged
    )
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, forged)
    assert report.reason is not None and "chain head" in report.reason


async def test_newest_rows_deleted_are_found(vdata_db: Any, owner: asyncpg.Connection) -> None:
    ids = await seed(vdata_db, 5)
    await owner.execute("DELETE FROM app.audit_log WHERE id >= $1", ids[3])
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.broken_id) == (False, ids[-1])
    assert report.reason is not None and report.reason.startswith("the newest rows are missing")


async def test_empty_trail_verifies(vdata_db: Any) -> None:
    report = await vdata_db.audit.verify_chain()
    assert (report.ok, report.rows_checked, report.first_id) == (True, 0, None)


async def test_retention_drops_old_months_and_the_rest_still_verifies(
    vdata_db: Any, vdata_dsn: str
) -> None:
    conn = await asyncpg.connect(vdata_dsn)
    try:
        await conn.execute(
            "CREATE TABLE app.audit_log_y2020m01 PARTITION OF app.audit_log"
            " FOR VALUES FROM ('2020-01-01') TO ('2020-02-01')"
        )
        for _ in range(3):  # chained by the trigger, dated in January 2020
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
        False,  # the first surviving row's prev_hash is trusted
    )


async def test_cli_verify_exits_1_naming_the_row(
    vdata_db: Any, vdata_app_dsn: str, owner: asyncpg.Connection, capsys: Any
) -> None:
    ids = await seed(vdata_db, 5)
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, main, ["audit", "verify", "--dsn", vdata_app_dsn])
    assert code == 0
    assert "audit chain OK: 5 row(s) checked" in capsys.readouterr().out
    await owner.execute("UPDATE app.audit_log SET after = '{}' WHERE id = $1", ids[2])
    code = await loop.run_in_executor(None, main, ["audit", "verify", "--dsn", vdata_app_dsn])
    assert code == 1
    assert f"audit chain BROKEN at id {ids[2]}: row altered" in capsys.readouterr().out
    os.environ.pop("VDATA_DSN", None)
    assert await loop.run_in_executor(None, main, ["audit", "verify"]) == 2


async def _rate(db: Any, seconds: float, workers: int, hold: float = 0.0) -> float:
    """Return audited writes/s by *workers* concurrent writers over *seconds*.

    With *hold*, each write is a transaction that stays open that long after
    its audit row, as a unit of work doing more after its audit write would.
    """
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer(n: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            if hold:
                async with db.transaction(actor="bench") as tx:
                    await tx.audit.record("test.rate", "thing", str(n))
                    await asyncio.sleep(hold)
            else:
                await db.audit.record("test.rate", "thing", str(n), actor="bench")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(workers)))
    return done / (time.perf_counter() - started)


async def test_audit_write_rate_with_chain_on_and_off(
    vdata_db: Any, vdata_dsn: str, owner: asyncpg.Connection
) -> None:
    """Measure, in one run, what the chain's serialisation costs (printed, not asserted)."""
    workers = vdata_db.settings.pool_max_size
    chained = await _rate(vdata_db, 2.0, workers)
    chained_held = await _rate(vdata_db, 1.0, workers, hold=0.005)
    # Chain off, on this throwaway clone only: the row is still hashed (the
    # same function) but not linked, so writers do not queue on the head.
    await owner.execute("SET session_replication_role = DEFAULT")
    await owner.execute(
        """CREATE FUNCTION app.audit_log_unchained() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               NEW.id := nextval('app.audit_log_id_seq'::regclass);
               NEW.row_hash := app.audit_log_row_hash(NEW);
               RETURN NEW;
           END; $$;
           ALTER TABLE app.audit_log DISABLE TRIGGER trigger_audit_log_chain;
           ALTER TABLE app.audit_log DISABLE TRIGGER trigger_audit_log_chain_commit;
           CREATE TRIGGER trigger_audit_log_unchained BEFORE INSERT ON app.audit_log
           FOR EACH ROW EXECUTE FUNCTION app.audit_log_unchained();"""
    )
    unchained = await _rate(vdata_db, 2.0, workers)
    unchained_held = await _rate(vdata_db, 1.0, workers, hold=0.005)
    last = await vdata_db.audit.search(limit=1)
    assert last.items[0].prev_hash is None  # the measurement really ran unchained
    print(
        f"\naudit writes/s with {workers} writers: chain on {chained:.0f}, "
        f"chain off {unchained:.0f} ({chained / unchained:.0%}); transactions held 5 ms "
        f"after the write: chain on {chained_held:.0f}, off {unchained_held:.0f}",
        file=sys.stderr,
    )
    assert chained_held < unchained_held  # the head lock serialises whole transactions
    assert chained > 0 and unchained > 0


async def test_updates_are_chained_too(vdata_db: Any) -> None:
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
    assert (await db.audit.verify_chain()).ok


async def test_savepoint_rollback_unlinks_its_rows(vdata_db: Any) -> None:
    db = vdata_db
    await seed(db, 2)
    async with db.transaction(actor="ada") as tx:
        kept = await tx.audit.record("test.sp", "thing", "kept")
        try:
            async with tx.transaction() as inner:
                await inner.audit.record("test.sp", "thing", "undone")
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        last = await tx.audit.record("test.sp", "thing", "last")
    assert last.prev_hash == kept.row_hash
    assert [e.entity_id for e in await db.audit.history("thing", "undone")] == []
    report = await db.audit.verify_chain()
    assert (report.ok, report.rows_checked) == (True, 4)
    assert await db.audit.record("test.sp", "thing", "next", actor="ada") is not None
    assert (await db.audit.verify_chain()).ok  # the head moved to "last" at commit


async def test_repeatable_read_writers_retry_instead_of_forking(vdata_db: Any) -> None:
    """Under REPEATABLE READ a writer that lost the head gets 40001 and is re-run whole."""
    db = vdata_db

    async def unit(tx: Any) -> None:
        await tx.audit.record("test.rr", "thing", "a")
        await asyncio.sleep(0.01)  # hold the head while others queue behind it
        await tx.audit.record("test.rr", "thing", "b")

    await asyncio.gather(
        *(
            db.run_in_transaction(unit, actor=f"rr{i}", isolation="repeatable_read", retries=50)
            for i in range(8)
        )
    )
    report = await db.audit.verify_chain()
    assert (report.ok, report.rows_checked) == (True, 16)
    assert db.counters.retries > 0  # the conflicts were real, and were retried


async def test_a_recomputed_chain_is_caught_only_by_an_external_anchor(
    vdata_db: Any, vdata_app_dsn: str, owner: asyncpg.Connection, capsys: Any
) -> None:
    ids = await seed(vdata_db, 6)
    anchor = await vdata_db.audit.head()
    assert anchor.last_id == ids[-1]
    # The owner alters row 2 and re-computes every later hash and the head.
    await owner.execute("UPDATE app.audit_log SET actor = 'mallory' WHERE id = $1", ids[2])
    await owner.execute(
        f"""DO $$
        DECLARE r record; prev bytea;
        BEGIN
            SELECT row_hash INTO prev FROM app.audit_log WHERE id = {ids[1]};
            FOR r IN SELECT id FROM app.audit_log WHERE id >= {ids[2]} ORDER BY id LOOP
                UPDATE app.audit_log SET prev_hash = prev WHERE id = r.id;
                UPDATE app.audit_log AS a SET row_hash = app.audit_log_row_hash(a)
                WHERE id = r.id RETURNING row_hash INTO prev;
            END LOOP;
            UPDATE app.audit_log_head SET last_hash = prev;
        END $$;"""
    )
    assert (await vdata_db.audit.verify_chain()).ok  # consistent again: the limit of a chain
    report = await vdata_db.audit.verify_chain(anchor=anchor)
    assert (report.ok, report.broken_id) == (False, ids[-1])
    assert report.reason is not None and report.reason.startswith("anchored row changed")
    args = ["audit", "verify", "--dsn", vdata_app_dsn, "--anchor-id", str(anchor.last_id)]
    args += ["--anchor-hash", (anchor.last_hash or b"").hex()]
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, main, args) == 1
    assert await loop.run_in_executor(None, main, ["audit", "head", "--dsn", vdata_app_dsn]) == 0
    assert f"--anchor-id {ids[-1]} --anchor-hash " in capsys.readouterr().out
