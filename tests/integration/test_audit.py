"""AuditRepository on a real PostgreSQL: append, search, history, activity, stats, export."""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
import tracemalloc
from typing import Any

import asyncpg
import pytest

from vdata.errors import ValidationError
from vdata.models.audit import AuditDailyCount

pytestmark = pytest.mark.integration


async def test_record_appends_one_linked_event(vdata_db: Any) -> None:
    db = vdata_db
    first = await db.audit.record("user.login", "user", "u1", actor="ada", ip="192.0.2.7")
    second = await db.audit.record(
        "export.run",
        "audit",
        before={"rows": 0},
        after={"rows": 2, "note": "<b>ok</b>"},
        request_id="req-1",
        actor="ada",
    )
    assert (first.actor, first.action, first.entity_id, first.ip) == (
        "ada",
        "user.login",
        "u1",
        "192.0.2.7",
    )
    assert first.prev_hash is None and len(first.row_hash) == 32
    assert second.prev_hash is None and second.id > first.id  # linked by the sealer
    assert json.loads(second.after or "") == {"rows": 2, "note": "<b>ok</b>"}
    assert second.request_id == "req-1"


async def test_record_rejects_bad_input_and_writes_nothing(vdata_db: Any) -> None:
    db = vdata_db
    bad: list[dict[str, Any]] = [
        {"action": "User.Create", "entity_type": "user", "actor": "ada"},  # server CHECK
        {"action": "user.create", "entity_type": "user", "entity_id": "a\x00", "actor": "ada"},
        {"action": "user.create", "entity_type": "user"},  # no actor on the pool
        {"action": "user.create", "entity_type": "user", "actor": "x" * 201},
        {"action": "user.create", "entity_type": "user", "actor": "ada", "ip": "not-an-ip"},
    ]
    for fields in bad:
        with pytest.raises(ValidationError):
            await db.audit.record(**fields)
    assert (await db.audit.search()).items == []


async def test_search_filters_and_keyset_pages(vdata_db: Any) -> None:
    db = vdata_db
    made = []
    for i in range(25):
        made.append(
            await db.audit.record(
                f"thing.{'create' if i % 2 else 'update'}",
                "thing" if i % 5 else "other",
                str(i % 3),
                actor="ada" if i < 15 else "bob",
            )
        )
    newest_first = [e.id for e in reversed(made)]
    seen: list[int] = []
    cursor = None
    while True:
        part = await db.audit.search(cursor=cursor, limit=7)
        seen += [e.id for e in part.items]
        if (cursor := part.next_cursor) is None:
            break
    assert seen == newest_first
    bob = await db.audit.search(actor="bob", limit=100)
    assert [e.id for e in bob.items] == newest_first[:10]
    combo = await db.audit.search(actor="ada", action="thing.create", entity_type="thing")
    assert {e.id for e in combo.items} == {
        e.id
        for e in made
        if e.actor == "ada" and e.action == "thing.create" and e.entity_type == "thing"
    }
    by_entity = await db.audit.search(entity_type="other", entity_id="0")
    assert {e.id for e in by_entity.items} == {made[0].id, made[15].id}
    later = await db.audit.search(since=made[10].occurred_at, limit=100)
    assert all(e.occurred_at >= made[10].occurred_at for e in later.items)
    assert (await db.audit.search(until=made[0].occurred_at)).items == []
    first = await db.audit.search(limit=5)
    assert first.next_cursor is not None
    with pytest.raises(ValidationError):  # another listing's cursor is refused
        await db.audit.activity("ada", cursor=first.next_cursor)
    with pytest.raises(ValidationError):
        await db.audit.search(cursor=first.next_cursor[:-3] + "abc")
    with pytest.raises(ValidationError):
        await db.audit.search(limit=0)


async def test_history_and_activity(vdata_db: Any) -> None:
    db = vdata_db
    for i in range(6):
        await db.audit.record("doc.edit", "doc", "d1" if i % 2 else "d2", actor=f"u{i % 3}")
    history = await db.audit.history("doc", "d1")
    assert [e.id for e in history] == sorted(e.id for e in history) and len(history) == 3
    assert await db.audit.history("doc", "nope") == []
    pages: list[int] = []
    cursor = None
    while True:
        part = await db.audit.activity("u0", cursor=cursor, limit=1)
        pages += [e.id for e in part.items]
        if (cursor := part.next_cursor) is None:
            break
    assert len(pages) == 2 and pages == sorted(pages, reverse=True)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert (await db.audit.activity("u0", since=future)).items == []


async def test_stats_count_per_action_per_day(vdata_db: Any, vdata_dsn: str) -> None:
    owner = await asyncpg.connect(vdata_dsn)
    try:
        await owner.execute(
            """INSERT INTO app.audit_log (occurred_at, actor, action, entity_type)
               SELECT d, 'x', a, 'thing'
               FROM unnest(
                   ARRAY['2026-03-01 10:00Z', '2026-03-01 23:59Z', '2026-03-02 00:00Z',
                         '2026-03-02 12:00Z', '2026-03-03 01:00Z']::timestamptz[],
                   ARRAY['a.one', 'a.one', 'a.one', 'a.two', 'a.one']) AS t (d, a)
               ORDER BY d"""
        )
    finally:
        await owner.close()
    stats = await vdata_db.audit.stats(
        since=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), until=dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
    )
    assert stats == [
        AuditDailyCount("a.one", dt.date(2026, 3, 1), 2),
        AuditDailyCount("a.one", dt.date(2026, 3, 2), 1),
        AuditDailyCount("a.two", dt.date(2026, 3, 2), 1),
    ]
    assert sum(c.events for c in await vdata_db.audit.stats()) == 5


async def test_export_streams_100k_rows_in_bounded_memory(vdata_db: Any, vdata_dsn: str) -> None:
    owner = await asyncpg.connect(vdata_dsn)
    try:
        await owner.execute(
            """INSERT INTO app.audit_log (actor, action, entity_type, entity_id, after)
               SELECT 'bulk', 'thing.create', 'thing', n::text,
                   jsonb_build_object('n', n, 'pad', repeat('x', 200))
               FROM generate_series(1, 100000) AS n"""
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        try:
            count, last_id = 0, 0
            async for event in vdata_db.audit.export(prefetch=1000):
                assert event.id > last_id and event.prev_hash is None
                count, last_id = count + 1, event.id
            _, streamed_peak = tracemalloc.get_traced_memory()
            rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
            tracemalloc.reset_peak()
            everything = await owner.fetch("SELECT * FROM app.audit_log")
            _, loaded_peak = tracemalloc.get_traced_memory()
            del everything
        finally:
            tracemalloc.stop()
    finally:
        await owner.close()
    assert count == 100_000
    started = time.perf_counter()
    assert (await vdata_db.audit.seal()).rows_sealed == 100_000
    seal_seconds = time.perf_counter() - started
    started = time.perf_counter()
    report = await vdata_db.audit.verify_chain()
    verify_seconds = time.perf_counter() - started
    assert (report.ok, report.rows_checked, report.unsealed) == (True, 100_000, 0)
    print(
        f"\nseal of 100,000 rows: {seal_seconds:.2f} s; "
        f"verify_chain over them: {verify_seconds:.2f} s",
        file=sys.stderr,
    )
    print(
        f"\nexport of 100,000 audit rows: traced peak {streamed_peak / 2**20:.1f} MiB streamed "
        f"vs {loaded_peak / 2**20:.1f} MiB fetched at once; peak RSS growth "
        f"{rss_growth / 1024:.1f} MiB",
        file=sys.stderr,
    )
    assert streamed_peak < 32 * 2**20  # generous: ~1,000 rows in flight, not 100,000
    assert streamed_peak * 4 < loaded_peak


async def test_export_in_a_transaction_and_early_stop(vdata_db: Any) -> None:
    db = vdata_db
    for i in range(30):
        await db.audit.record("thing.create", "thing", str(i), actor="ada")
    async with db.transaction(actor="ada") as tx:
        await tx.audit.record("thing.create", "thing", "in-tx")
        inside = [e.entity_id async for e in tx.audit.export(prefetch=7)]
        assert inside[-1] == "in-tx" and len(inside) == 31  # sees its own write
        await tx.audit.record("thing.create", "thing", "after-export")  # tx still usable
    stream = db.audit.export(prefetch=5)
    taken = []
    async for event in stream:
        taken.append(event)
        if len(taken) == 3:
            break
    await stream.aclose()  # returns the connection and ends its transaction
    assert len(taken) == 3
    health = await db.health()
    assert health.pool.in_use == 0
    window = await db.audit.search(limit=1)
    since = window.items[0].occurred_at  # both writes of the transaction share its now()
    assert [e.entity_id async for e in db.audit.export(since=since)] == ["in-tx", "after-export"]
