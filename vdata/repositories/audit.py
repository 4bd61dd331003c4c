"""The audit trail: the named queries of sql/audit/audit.sql, typed.

Every other repository writes its events in the same statement as its
change; this one appends free-standing events (logins, exports), reads the
trail, streams it, and re-computes its hash chain (see docs/audit-chain.md).
"""

from __future__ import annotations

__all__ = ["SECURITY_ACTIONS", "AuditRepository"]

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import msgspec

from vdata.engine.repository import Repository, Slice
from vdata.models.audit import (
    AuditActorCount,
    AuditDailyCount,
    AuditEntityTypeCount,
    AuditEvent,
    ChainHead,
    ChainReport,
    DroppedPartition,
    SealReport,
)
from vdata.queries import load
from vdata.security.validation import check_filter, check_identifier, check_instant, json_text

_Q = load()

_INSERT = _Q.bind("audit.insert_audit_event", AuditEvent)
_SEARCH = _Q.bind("audit.list_audit_events", AuditEvent, lag_tolerant=True)
_BY_ENTITY = _Q.bind("audit.list_audit_events_by_entity", AuditEvent, lag_tolerant=True)
_BY_ACTOR = _Q.bind("audit.list_audit_events_by_actor", AuditEvent, lag_tolerant=True)
_BY_DAY = _Q.bind("audit.count_audit_events_by_day", AuditDailyCount, lag_tolerant=True)
_EXPORT = _Q.bind("audit.list_audit_events_for_export", AuditEvent)
_VERIFY = _Q.bind("audit.verify_audit_chain", ChainReport)
_HEAD = _Q.bind("audit.get_audit_chain_head", ChainHead)
_ANCHOR_HOLDS = _Q.bind("audit.audit_anchor_holds", bool)
_SEAL = _Q.bind("audit.seal_audit_log", SealReport)
_DROP_PARTITIONS = _Q.bind("audit.drop_audit_log_partitions", DroppedPartition)
_BY_ACTOR_COUNT = _Q.bind("audit.count_audit_events_by_actor", AuditActorCount)
_BY_ENTITY_TYPE_COUNT = _Q.bind("audit.count_audit_events_by_entity_type", AuditEntityTypeCount)
_SECURITY = _Q.bind("audit.list_security_events", AuditEvent)

# The events list_security_events returns (the partial index's predicate).
SECURITY_ACTIONS = ("api_key.refuse", "user.lock", "user.login_failed")


def _json(field: str, value: Any) -> str | None:
    return None if value is None else json_text(field, value)


def _by_id(event: AuditEvent) -> tuple[int]:
    return (event.id,)


def _after_id(position: tuple[Any, ...] | None) -> dict[str, object]:
    return {"after_id": None if position is None else position[0]}


def _by_time(event: AuditEvent) -> tuple[dt.datetime, int]:
    return (event.occurred_at, event.id)


def _after_time(position: tuple[Any, ...] | None) -> dict[str, object]:
    if position is None:
        return {"after_at": None, "after_id": None}
    return {"after_at": position[0], "after_id": position[1]}


class AuditRepository(Repository):
    """Read ``app.audit_log``, append to it, export it and verify its chain."""

    __slots__ = ()

    async def record(
        self,
        action: str,
        entity_type: str,
        entity_id: str | None = None,
        *,
        before: Any = None,
        after: Any = None,
        ip: str | None = None,
        request_id: str | None = None,
        actor: str | None = None,
    ) -> AuditEvent:
        """Append one event that no row change carries (a login, an export); return it.

        *before*/*after* are stored as JSON. Raise ValidationError for an
        action or entity type that is not a lower-case dotted name.
        """
        if entity_id is not None:
            check_identifier("entity_id", entity_id)
        return await self.one(
            _INSERT,
            actor=self.actor(actor),
            action=check_identifier("action", action, max_length=63),
            entity_type=check_identifier("entity_type", entity_type, max_length=63),
            entity_id=entity_id,
            before=_json("before", before),
            after=_json("after", after),
            ip=ip,
            request_id=request_id,
        )

    async def search(
        self,
        *,
        actor: str | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Slice[AuditEvent]:
        """Return one keyset page of events matching every given filter, newest first.

        The time range is ``[since, until)``. Raise ValidationError for a
        tampered *cursor*, a *limit* outside 1..1000, a filter holding a NUL
        or control character or longer than the column allows, or a naive
        datetime.
        """
        return await self.keyset_page(
            _SEARCH,
            cursor,
            limit,
            _by_id,
            _after_id,
            actor=check_filter("actor", actor),
            entity_type=check_filter("entity_type", entity_type, max_length=63),
            entity_id=check_filter("entity_id", entity_id),
            action=check_filter("action", action, max_length=63),
            since=check_instant("since", since),
            until=check_instant("until", until),
        )

    async def history(
        self, entity_type: str, entity_id: str, *, limit: int = 1000
    ) -> list[AuditEvent]:
        """Return the first *limit* events of one entity, oldest first."""
        _, limit = self.page_bounds(0, limit, max_limit=100_000)
        return await self.many(
            _BY_ENTITY,
            entity_type=check_filter("entity_type", entity_type, max_length=63),
            entity_id=check_filter("entity_id", entity_id),
            page_size=limit,
        )

    async def activity(
        self,
        actor: str,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Slice[AuditEvent]:
        """Return one keyset page of what *actor* did in ``[since, until)``, newest first."""
        return await self.keyset_page(
            _BY_ACTOR,
            cursor,
            limit,
            _by_time,
            _after_time,
            actor=check_filter("actor", actor),
            since=check_instant("since", since),
            until=check_instant("until", until),
        )

    async def stats(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[AuditDailyCount]:
        """Return event counts per action per UTC day in ``[since, until)``, in one query."""
        return await self.many(
            _BY_DAY, since=check_instant("since", since), until=check_instant("until", until)
        )

    async def stats_by_actor(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[AuditActorCount]:
        """Return event counts per actor in ``[since, until)``, most events first."""
        return await self.many(
            _BY_ACTOR_COUNT,
            since=check_instant("since", since),
            until=check_instant("until", until),
        )

    async def stats_by_entity_type(
        self, *, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[AuditEntityTypeCount]:
        """Return event and distinct-actor counts per entity type in ``[since, until)``."""
        return await self.many(
            _BY_ENTITY_TYPE_COUNT,
            since=check_instant("since", since),
            until=check_instant("until", until),
        )

    async def security_events(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Slice[AuditEvent]:
        """Return one keyset page of failed and refused activity, newest first.

        The events are failed logins (``user.login_failed``), lockouts
        (``user.lock``) and refused API keys (``api_key.refuse``) in
        ``[since, until)``; a partial index holds just those. Raise
        ValidationError for a naive datetime, a tampered cursor or a *limit*
        outside 1..1000.
        """
        return await self.keyset_page(
            _SECURITY,
            cursor,
            limit,
            _by_time,
            _after_time,
            since=check_instant("since", since),
            until=check_instant("until", until),
        )

    async def export(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        prefetch: int = 1000,
    ) -> AsyncIterator[AuditEvent]:
        """Yield every event in ``[since, until)`` in chain order, *prefetch* rows at a time.

        Rows come through a server-side cursor, so memory stays bounded by
        *prefetch* whatever the range holds. On the pool this opens its own
        transaction (a cursor lives only inside one) and holds a connection
        until the iteration ends or the iterator is closed; inside a
        transaction it uses a savepoint.
        """
        if not 1 <= prefetch <= 100_000:
            raise ValueError("prefetch must be between 1 and 100000")
        args = _EXPORT.arguments(
            (), {"since": check_instant("since", since), "until": check_instant("until", until)}
        )
        async with (
            self.executor.transaction() as tx,
            aclosing(tx.cursor(_EXPORT, args, prefetch=prefetch)) as rows,
        ):
            async for record in rows:
                yield AuditEvent(*record[:])

    async def verify_chain(
        self,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        *,
        from_id: int | None = None,
        anchor: ChainHead | None = None,
    ) -> ChainReport:
        """Re-compute the audit trail's hashes and seals; return a report naming the first break.

        Checks the ids from the first event at or after *since* (or from
        *from_id*, whose ``prev_hash`` is then trusted: use it after
        retention or an investigated incident) to the last event before
        *until*: every row against its own hash and against the hash its
        seal lists (or, for rows written before sealing, its link to the row
        before), and the seals listing them against each other. With no
        *until*, the newest seal must also be the sealing head. An *anchor*
        (a ``head()`` kept outside the database) must still match its seal,
        which catches seals re-computed by the owner. Rows committed after
        the newest seal are counted in ``unsealed``. Never raises for a
        broken chain; ``ok`` says.
        """
        report = await self.one(
            _VERIFY,
            since=check_instant("since", since),
            until=check_instant("until", until),
            from_id=from_id,
        )
        if not report.ok or anchor is None or anchor.last_id is None:
            return report
        if await self.value(_ANCHOR_HOLDS, id=anchor.last_id, hash=anchor.last_hash):
            return report
        return msgspec.structs.replace(
            report,
            ok=False,
            broken_id=anchor.last_id,
            reason="anchored seal changed or missing: the seals were re-computed after the anchor",
        )

    async def head(self) -> ChainHead:
        """Return the sealing head (newest seal and its hash), to keep as an external anchor."""
        return await self.one(_HEAD)

    async def seal(self) -> SealReport:
        """Seal the audit rows committed since the last seal; return the new seal.

        Writers never wait for this: run it every few seconds (``vdata audit
        seal --every 5``); until then a new row's hash covers only itself.
        Call it on the database, not inside a transaction that has written
        anything: the server refuses (a ``DatabaseError``), since a seal must
        not list the caller's uncommitted rows.
        """
        return await self.one(_SEAL)

    async def drop_partitions(self, *, keep_months: int) -> list[str]:
        """Drop the monthly partitions older than the last *keep_months*; return their names.

        Owner only (retention): the service role gets PermissionDeniedError.
        Afterwards the oldest surviving row starts the chain, and
        ``verify_chain`` trusts its ``prev_hash`` (``genesis`` is False).
        """
        if keep_months < 1:
            raise ValueError("keep_months must be at least 1")
        rows = await self.many(_DROP_PARTITIONS, keep_months=keep_months)
        return [row.partition_name for row in rows]
